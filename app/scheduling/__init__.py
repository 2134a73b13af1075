"""Consultation scheduling rules: who may see and join what, and booking clashes."""
