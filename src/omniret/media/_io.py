"""Opening source files for decoding, with short human reasons for every way it can fail."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO

from omniret.errors import MediaError

# Leading bytes of common non-image / non-text formats, to say what a misnamed file really is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office/OpenDocument/EPUB file)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"ID3", "MP3 audio"),
    (b"fLaC", "FLAC audio"),
    (b"OggS", "Ogg media"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM video"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


#: opening a FIFO for reading blocks until a writer appears; O_NONBLOCK returns at once (then checked)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "is a folder"), (stat.S_ISFIFO, "is a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "is a socket"), (stat.S_ISCHR, "is a character device"),
                       (stat.S_ISBLK, "is a block device")):
        if test(mode):
            return name
    return "is a special file"


def _open_fd(uri: str) -> int:
    return os.open(uri, _OPEN_FLAGS)


def open_binary(uri: str) -> BinaryIO:
    """Open ``uri`` for reading bytes, mapping OS errors to :class:`MediaError` reasons.

    Only a regular file (or a link to one) opens: a FIFO, a device or a socket would block or never end
    (``search --image fifo`` hung), so it is refused with a reason. The check is on the opened
    descriptor (opened non-blocking, then ``fstat``), so nothing can swap the file in between.
    """
    try:
        fd = _open_fd(uri)
    except FileNotFoundError as e:
        raise MediaError(uri, "file vanished") from e
    except PermissionError as e:
        raise MediaError(uri, "permission denied") from e
    except IsADirectoryError as e:
        raise MediaError(uri, "is a folder, not a file") from e
    except OSError as e:
        raise MediaError(uri, f"cannot open file ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = _kind(mode)
            raise MediaError(uri, f"{what}, not a file" if what == "is a folder"
                             else f"{what}, not a regular file; give a file path")
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
        with contextlib.suppress(AttributeError, TypeError):
            f.raw.name = uri  # libraries that read .name (tifffile) see the path, not the descriptor number
        return f
    except BaseException:
        os.close(fd)
        raise


def check_regular_file(path: str | os.PathLike[str], what: str = "file") -> str:
    """``path`` as a string if it names a regular file (following links), else :class:`MediaError` saying what
    it is instead (missing, a folder, a FIFO, a device...). For arguments checked before they are used."""
    uri = os.fspath(path)
    try:
        mode = os.stat(uri).st_mode
    except FileNotFoundError as e:
        raise MediaError(uri, f"no such {what}") from e
    except OSError as e:
        raise MediaError(uri, f"cannot read this {what} ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):
        raise MediaError(uri, f"{_kind(mode)}, not a regular file; give {'an' if what[0] in 'aeiou' else 'a'} {what}")
    return uri


def file_size(f: BinaryIO) -> int:
    """Size in bytes of an open file."""
    return os.fstat(f.fileno()).st_size


def looks_like_text(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) reads as text: UTF-8/ASCII without NULs or
    stray control characters, or UTF-16/32 with a byte-order mark."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if not head or b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="ignore")
    if len(text) < len(head) // 2:  # mostly undecodable bytes
        return False
    bad = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f\v")
    return bad <= len(text) // 100


def describe(head: bytes) -> str:
    """A short guess at what a file with these first bytes is, for error messages."""
    if not head:
        return "empty file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
            return "a HEIC/HEIF image"
        return "an MP4/MOV file"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "a legacy Office file (.doc/.xls/.ppt) or an encrypted one"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "WAV audio"
    if looks_like_text(head):
        return "text"
    return "unrecognised binary data"
