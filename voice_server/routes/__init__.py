"""HTTP and WebSocket routes: thin, the logic lives in voice_server/answering.py and voice_server/session.py."""
