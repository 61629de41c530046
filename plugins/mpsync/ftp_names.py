"""Names on the FTP are input like any other: what a drop-folder name may be, and how an odd one is shown.

A listing can hold (hostile, or spoofed by a server) names such as `Ostatki_MP/../../../x.csv`, a name with a
newline, raw cp1251 bytes on a UTF-8 connection, or 255 bytes of one character. Such a file is skipped and
reported once (dropfolder.report_skipped); only a plain name is ever joined to a folder, locally or on the
FTP, so nothing is written outside the work folder.
"""

from __future__ import annotations

import codecs
import re

MAX_NAME_BYTES = 200            # 255 is the usual file system limit; ".part" and result suffixes need room
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LENIENT_PREFIX = "mpsync-lenient-"


def problem(name: str) -> str | None:
    """Why a name from a listing must not be used, or None when it is a plain file name."""
    if _SURROGATE_RE.search(name):
        return "the name is not valid text in the connection's encoding"
    if not name or name in (".", ".."):
        return "not a file name"
    if "/" in name or "\\" in name:
        return "the name contains a path separator"
    if ".." in name:
        return "the name contains '..'"
    if _CONTROL_RE.search(name):
        return "the name contains a control character"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"the name is longer than {MAX_NAME_BYTES} bytes"
    return None


def shown(name: str) -> str:
    """A name safe to print in a log or a result file: escapes instead of control or undecodable bytes."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= 120 else text[:117] + "..."


def lenient_codec(encoding: str) -> str:
    """The name of a codec like `encoding` whose errors are surrogate escapes: ftplib decodes the control
    connection strictly, and one undecodable name in a listing made every import run crash."""
    base = codecs.lookup(encoding).name
    return _LENIENT_PREFIX + base


def _search(name: str) -> codecs.CodecInfo | None:
    if not name.startswith(_LENIENT_PREFIX.replace("-", "_")) and not name.startswith(_LENIENT_PREFIX):
        return None
    base = codecs.lookup(name.replace("_", "-")[len(_LENIENT_PREFIX):])

    class Decoder(codecs.IncrementalDecoder):
        def __init__(self, errors: str = "strict") -> None:
            super().__init__("surrogateescape")
            self._inner = base.incrementaldecoder("surrogateescape")

        def decode(self, data, final=False):
            return self._inner.decode(data, final)

        def reset(self):
            self._inner.reset()

    class Encoder(codecs.IncrementalEncoder):
        def encode(self, text, final=False):
            return base.encode(text, "surrogateescape")[0]

    return codecs.CodecInfo(
        name=_LENIENT_PREFIX + base.name,
        encode=lambda text, errors="strict": base.encode(text, "surrogateescape"),
        decode=lambda data, errors="strict": base.decode(data, "surrogateescape"),
        incrementalencoder=Encoder, incrementaldecoder=Decoder,
        streamreader=base.streamreader, streamwriter=base.streamwriter)


codecs.register(_search)
