"""Streaming TTS server (OpenAI-compatible /v1/audio/speech) with Piper (CPU) and XTTS v2 (GPU) engines."""
