"""`python -m speech.tts`: the streaming TTS server."""

from __future__ import annotations

import uvicorn

from speech.common.logs import setup_logging
from speech.tts.app import create_app
from speech.tts.config import TtsSettings


def main() -> None:
    settings = TtsSettings()
    setup_logging("tts", settings.log_level, settings.log_json)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.tts_host,
        port=settings.tts_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.tts_shutdown_grace_s),
        loop="auto",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
