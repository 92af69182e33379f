"""`python -m speech.llm`: the embedded OpenAI-compatible LLM server (llama.cpp + SmolLM2-135M)."""

from speech.llm.server import main

if __name__ == "__main__":
    main()
