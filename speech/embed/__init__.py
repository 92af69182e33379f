"""Embedded text-embedding server: OpenAI-compatible `/v1/embeddings` over all-MiniLM-L6-v2 (knowledge bases)."""
