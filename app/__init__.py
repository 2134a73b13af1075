"""Hoichan web application: configuration, persistence, auth, REST API, scheduling, audit."""

__version__ = "0.1.0"
