"""Riva-compatible streaming ASR server backed by faster-whisper (see speech/README.md)."""
