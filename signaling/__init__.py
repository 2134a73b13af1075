"""Socket.IO signaling for live rooms; ``signaling.server.setup_signaling`` wires it in.

Kept import-light: Alembic's env imports ``signaling.models`` without the server."""
