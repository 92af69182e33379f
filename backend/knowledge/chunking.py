"""Pages into chunks small enough for a precise match and big enough to answer from.

Paragraphs are packed up to ~`max_chars` (about 80-100 tokens for MiniLM, whose window is 256: small chunks keep one
topic each, which is also what a 135M model answers from best); a paragraph longer than that is split on sentences. A CSV row is always its own chunk. Chunks never cross a page, so "p. 2" is exact.
"""

from __future__ import annotations

import re

from backend.knowledge.extract import Page

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def chunk_pages(pages: list[Page], *, max_chars: int = 400, one_per_page: bool = False) -> list[Page]:
    chunks: list[Page] = []
    for page in pages:
        if one_per_page:
            chunks.append(Page(page.number, page.text.strip()[:max_chars * 4]))
            continue
        chunks.extend(Page(page.number, text) for text in _pack(_pieces(page.text, max_chars), max_chars))
    return chunks


def _pieces(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE.split(paragraph):
            pieces.extend(sentence[i:i + max_chars] for i in range(0, len(sentence), max_chars))
    return pieces


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    packed: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > max_chars:
            packed.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        packed.append(current)
    return packed
