"""Socket.IO signaling for live rooms; ``signaling.server.setup_signaling`` wires it in."""
