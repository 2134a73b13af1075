"""Passwords, access/refresh/join tokens."""
