"""`python -m speech.embed`: the embedded OpenAI-compatible embedding server (all-MiniLM-L6-v2 in numpy)."""

from speech.embed.server import main

if __name__ == "__main__":
    main()
