"""Cut text into the pieces the TTS server synthesizes one after another.

The first piece decides the time to first audio, so it is kept short: the first clause of the first sentence, or,
for a long sentence without punctuation, its first few words. The rest goes sentence by sentence, which keeps the
prosody of whole sentences.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"[,;:–—]\s+|\s+[–—-]\s+")
_WS = re.compile(r"\s+")


def split_sentences(text: str) -> list[str]:
    parts = [_WS.sub(" ", p).strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p and any(ch.isalnum() for ch in p)]


def split_for_streaming(text: str, first_max_chars: int = 28) -> list[str]:
    """Sentences, with the first one cut at a clause (or word) boundary when it is longer than `first_max_chars`.

    Piper needs ~85 ms per second of speech on one core, so ~28 characters (~1.3 s of speech) keep the first
    audio near 110 ms; 0 disables the cut.
    """
    sentences = split_sentences(text)
    if not sentences or first_max_chars <= 0:
        return sentences
    first = sentences[0]
    if len(first) <= first_max_chars:
        return sentences
    head = _first_piece(first, first_max_chars)
    if head is None:
        return sentences
    return [head, first[len(head) :].strip(), *sentences[1:]]


def _first_piece(sentence: str, max_chars: int) -> str | None:
    # A clause boundary keeps natural prosody, so it may run 50 % past the limit.
    best = None
    for match in _CLAUSE_END.finditer(sentence):
        if match.start() > max_chars * 3 // 2:
            break
        best = match.start() + 1
        if match.start() >= max_chars // 2:
            break
    if best is not None and len(sentence) - best > 8:
        return sentence[:best].strip()
    # Otherwise the words that fit; never leave a tail of a word or two.
    head = ""
    for word in sentence.split(" "):
        if head and len(head) + 1 + len(word) > max_chars:
            break
        head = f"{head} {word}" if head else word
    return head if len(sentence) - len(head) > 12 and len(head) < len(sentence) else None
