"""HTTP and WebSocket routes: thin, the logic lives in voice_server/calls.py and voice_server/session.py."""
