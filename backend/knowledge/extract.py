"""Text out of an uploaded source, page by page, with a clear reason when there is none.

PDF (pypdf), DOCX (python-docx), TXT, Markdown, CSV (one entry per row, "column: value; ..."). Everything here is
blocking and CPU-bound: the ingestion worker calls it in a thread, never on a request.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import PdfReadError

KINDS = {"pdf", "docx", "txt", "md", "csv", "text"}
EXTENSIONS = {".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".md": "md", ".markdown": "md", ".csv": "csv"}


class ExtractionError(Exception):
    """The source has no usable text; the message is shown to the user as the source's failure reason."""


@dataclass(frozen=True)
class Page:
    number: int | None  # PDF page or CSV row (1-based); None for flowing text
    text: str


def kind_of(filename: str) -> str | None:
    lower = filename.lower()
    return next((kind for ext, kind in EXTENSIONS.items() if lower.endswith(ext)), None)


def extract(kind: str, data: bytes) -> list[Page]:
    if not data.strip():
        raise ExtractionError("the file is empty")
    pages = {"pdf": _pdf, "docx": _docx, "csv": _csv}.get(kind, _plain)(data)
    pages = [p for p in pages if p.text.strip()]
    if not pages:
        raise ExtractionError("no text found: the document may contain only images (scanned pages); "
                              "upload a text PDF or the text itself")
    return pages


def _pdf(data: bytes) -> list[Page]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("the PDF is encrypted (password-protected): upload an unprotected copy")
        return [Page(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise ExtractionError(f"the PDF could not be read ({type(exc).__name__}): it may be corrupt") from exc


def _docx(data: bytes) -> list[Page]:
    from docx import Document  # imported here: python-docx loads lxml, only needed for .docx

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionError("the DOCX could not be read: it may be corrupt") from exc
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        lines.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
    return [Page(None, "\n".join(lines))]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:4096]:
            raise ExtractionError("the file is binary, not text: upload PDF, DOCX, TXT, Markdown or CSV") from exc
        return data.decode("latin-1")


def _plain(data: bytes) -> list[Page]:
    text = _decode(data)
    if "\x00" in text:
        raise ExtractionError("the file is binary, not text: upload PDF, DOCX, TXT, Markdown or CSV")
    return [Page(None, text)]


def _csv(data: bytes) -> list[Page]:
    text = _decode(data)
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise ExtractionError(f"the CSV could not be read: {exc}") from exc
    return [Page(i + 1, "; ".join(f"{k}: {v}" for k, v in row.items() if k and v and v.strip()))
            for i, row in enumerate(rows)]
