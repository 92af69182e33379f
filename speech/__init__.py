"""Self-hosted speech servers: Riva-compatible ASR, streaming TTS, embedded LLM (see speech/README.md)."""
