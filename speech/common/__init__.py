"""Helpers shared by the speech servers: JSON logs, audio formats, graceful shutdown."""
