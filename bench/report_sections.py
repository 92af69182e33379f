"""BENCHMARKS.md holds one section per benchmark between marker comments; each script rewrites only its own."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def replace_section(start: str, end: str, section: str, path: Path = BENCHMARKS_MD) -> None:
    """`section` includes its own start and end markers; other sections stay as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)
