"""The SFU cluster's control plane: this process's SFU rooms (bridge), the routing of media
requests to the node carrying a room's media (router, node_rpc, nodes, subscriber_nodes), the
SFU worker processes (workers), what no single event triggers (sweeper) and the media
statistics (stats). It depends on the room protocol's state and outbox, never on its
handlers; the room protocol sees it only through ``signaling.ports.MediaPort``."""
