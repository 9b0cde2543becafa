"""Decode the text files users hand us (classes.txt, COCO JSON, config YAML) one way.

Windows editors start UTF-8 files with a byte-order mark and some save UTF-16; both are
unambiguous and read. Anything else that is not UTF-8 (cp1252, Latin-1, UTF-16 without a BOM)
could only be guessed, so it is refused with a reason naming the encoding problem: a guessed
class name would silently become the wrong concept.
"""

from __future__ import annotations

import codecs
from pathlib import Path

# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAVE_AS_UTF8 = "save it as UTF-8 (in most editors: Save As, Encoding: UTF-8)"


class TextEncodingError(ValueError):
    """Bytes that are not text segcli can read unambiguously; `reason` is shown to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), or UTF-16/32 marked with a BOM; else TextEncodingError."""
    encoding, body = "utf-8", data
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    else:
        if b"\x00" in data:
            raise TextEncodingError("it has NUL bytes: UTF-16 without a byte-order mark, or not text")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as e:
        bad = body[e.start : e.start + 1]
        what = f"byte 0x{bad[0]:02x} at offset {e.start + len(data) - len(body)}" if bad else "it ends mid-character"
        raise TextEncodingError(
            f"it is not valid {encoding.upper()} ({what}); a legacy encoding "
            "such as cp1252 or Latin-1 cannot be told apart reliably"
        ) from None


def read_text(path: Path) -> str:
    """`decode_text` of a regular file's bytes (core/regular: a FIFO is refused, never waited
    on); OSError (NotRegularFile among them) passes through for the caller to word."""
    from segcli.core.regular import read_regular

    return decode_text(read_regular(path))
