"""The embedded OpenAI-compatible LLM server: llama.cpp (llama-cpp-python) with SmolLM2-135M and prompt caching."""
