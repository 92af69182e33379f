"""Keeps bearer tokens that travel in URLs out of the logs.

Some tokens cannot avoid the URL: Vobiz's media socket path (/ws/vobiz/<token>), the browser test-call socket
(?token=), invitation links (?token=) and the signed campaign callback paths. Access logs are kept for long and read
by many; a token copied from one is a working credential until it expires. Every service installs this filter on
uvicorn's loggers at start, so whatever command line runs it, the access log shows `[redacted]` instead."""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_PATTERNS = [
    (re.compile(r"((?:^|[?&])(?:token|access_token|key)=)[^&\s\"']+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"(/ws/vobiz/)[^/?\s\"']+"), rf"\1{REDACTED}"),
    (re.compile(r"(/campaign-callbacks/[^/\s]+/[^/\s]+/)[^/?\s\"']+"), rf"\1{REDACTED}"),
]
_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class TokenScrubber(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


def install_token_scrubber() -> None:
    """Idempotent: one scrubber per uvicorn logger (filters run whichever handler the record reaches)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenScrubber) for f in logger.filters):
            logger.addFilter(TokenScrubber())
