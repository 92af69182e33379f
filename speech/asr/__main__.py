"""`python -m speech.asr`: the Riva-compatible ASR server."""

from speech.asr.server import main

if __name__ == "__main__":
    main()
