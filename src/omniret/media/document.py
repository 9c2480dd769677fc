"""Structured documents: the shape every non-PDF document reader returns, and the checks they share.

A reader (:mod:`~omniret.media.html`, :mod:`~omniret.media.word`, :mod:`~omniret.media.slides`,
:mod:`~omniret.media.sheets`, :mod:`~omniret.media.epub`, :mod:`~omniret.media.odf`,
:mod:`~omniret.media.mail`; the registry in :mod:`~omniret.media.formats`) turns a file into a
:class:`StructuredDoc`: a title, metadata, and :class:`DocPart` s in reading order — the sections
under their headings, the slides, the sheets, a message body — each with

- ``section``: the section path, titles from the top (``("Common Tasks", "Task 2: Conversion",
  "2.7: DRM")``), ``()`` for text before the first heading;
- ``page``: the 1-based slide, sheet or page number where the format has pages;
- ``role``: ``"toc"``, ``"index"``, ``"header"``, ``"footer"`` or ``"boilerplate"`` for navigation and
  repeated furniture, ``None`` for the body;
- ``text`` (heading first) and its ``chunks`` (:func:`omniret.media.text.chunk_text`, the chunker of
  text files) for the parts too long for one embedding.

An e-mail's attachments are decoded as their own formats into :class:`Attachment` s (documents,
images), recursively up to ``max_depth``.

Every reader refuses what it cannot read with a :class:`MediaError` naming the reason: a missing
library (named with its pip package), an empty, truncated or corrupt container, a password or DRM,
a zip that unpacks beyond ``max_unpacked`` bytes, the wrong format behind the extension.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omniret.errors import MediaError
from omniret.media._io import describe, file_size, open_binary

if TYPE_CHECKING:
    from omniret.media.text import Chunk

#: values of ``DocPart.role`` (``None`` is the body)
ROLES = ("toc", "index", "header", "footer", "boilerplate")
#: the zip-based formats, by a member only that format has, or by their ``mimetype`` member
_ZIP_MEMBERS: tuple[tuple[str, str], ...] = (
    ("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"),
)
_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/epub+zip": "epub",
}
#: how messages name each format
KIND_NAMES = {
    "docx": "Word document (.docx)", "pptx": "PowerPoint presentation (.pptx)",
    "xlsx": "Excel workbook (.xlsx)", "odt": "OpenDocument text (.odt)",
    "ods": "OpenDocument spreadsheet (.ods)", "odp": "OpenDocument presentation (.odp)",
    "epub": "EPUB e-book (.epub)",
}


def a(noun: str) -> str:
    """``noun`` with its indefinite article (``an Excel workbook``)."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
_CFB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound file: legacy Office, or encrypted OOXML/ODF
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


@dataclass(frozen=True)
class DocOptions:
    """Reader knobs. ``image_fn`` turns an attached image (RGB PIL) into what the caller keeps (pixels)."""

    chunk_chars: int = 800  # the chunk sizes of text files (omniret.media.text), set for all-MiniLM-L6-v2
    chunk_overlap: int = 150
    max_bytes: int = 512 * 2**20  # the file itself
    max_unpacked: int = 1024 * 2**20  # the sum of a zip container's members, unpacked
    max_rows: int = 100_000  # rows read per sheet
    max_depth: int = 3  # attachments inside attachments
    image_fn: Callable[[Any], Any] | None = None


@dataclass
class DocPart:
    """One section, slide, sheet or message body (see the module docstring)."""

    text: str
    kind: str = "section"  # "section" | "slide" | "sheet" | "page" | "body"
    title: str | None = None
    section: tuple[str, ...] = ()
    page: int | None = None
    role: str | None = None
    context: str = ""  # a line every chunk but the first is embedded with (a sheet's column header)
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: tuple[Chunk, ...] = ()


@dataclass
class Attachment:
    """A file inside a document (an e-mail's attachment): decoded as a document, as an image, or why not."""

    name: str
    content_type: str
    size: int
    doc: StructuredDoc | None = None
    image: Any = None  # what ``DocOptions.image_fn`` made of the picture
    error: str | None = None


@dataclass
class StructuredDoc:
    format: str  # registry name: "html", "docx", "pptx", "xlsx", "epub", "odt", "eml", "pdf", "text"
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    parts: list[DocPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    def pieces(self) -> int:
        """Parts, their chunks (when more than one) and attachments, all the way down."""
        return sum(1 + (len(p.chunks) if len(p.chunks) > 1 else 0) for p in self.parts) + sum(
            1 + (a.doc.pieces() if a.doc is not None else 0) for a in self.attachments)


def finish(doc: StructuredDoc, options: DocOptions) -> StructuredDoc:
    """Drop empty parts and chunk the rest (in place); the reader's last step."""
    from omniret.media.text import chunk_text  # charset-normalizer: not on import

    doc.parts = [p for p in doc.parts if p.text.strip()]
    for p in doc.parts:
        p.text = p.text.strip()
        p.chunks = tuple(chunk_text(p.text, max_chars=options.chunk_chars, overlap=options.chunk_overlap))
    return doc


# -- shared checks ---------------------------------------------------------------------------------
def require(uri: str, module: str, package: str, what: str) -> Any:
    """Import ``module`` or raise a :class:`MediaError` naming the pip ``package`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MediaError(uri, f"reading {what} needs the {package} package: pip install {package} "
                              "(or pip install 'omniret[media]')") from e


def quiet(module: str = "", category: type[Warning] = Warning) -> None:
    """Silence the warnings a reader's library prints about files it reads anyway (openpyxl's "extension
    is not supported", EbookLib's notes on its future defaults, Beautiful Soup's XHTML-as-HTML notice):
    those of ``category`` raised in ``module`` (and its submodules).

    A process-wide filter (``warnings.filterwarnings`` drops an identical one first, so calling this on
    every read adds it once): ``warnings.catch_warnings`` is not safe in the decode threads (it swaps
    the process-wide filter list and puts it back on exit).
    """
    warnings.filterwarnings("ignore", category=category, module=rf"{re.escape(module)}(\.|$)" if module else "")


def read_head(uri: str, options: DocOptions, n: int = 4096) -> bytes:
    """The first ``n`` bytes, after refusing an empty or oversized file."""
    with open_binary(uri) as f:
        size = file_size(f)
        if size == 0:
            raise MediaError(uri, "empty file (0 bytes)")
        if size > options.max_bytes:
            raise MediaError(uri, f"file too large: {size / 2**20:.1f} MiB exceeds the limit of "
                                  f"{options.max_bytes / 2**20:.0f} MiB (DocOptions.max_bytes)")
        return f.read(n)


def open_zip(uri: str, kind: str, options: DocOptions) -> zipfile.ZipFile:
    """Open the zip container of a file of ``kind`` (``"docx"``, ``"pptx"``, ``"xlsx"``, ``"odt"``,
    ``"epub"``), refusing it with the reason when it is not one (another format behind the extension
    is named), is encrypted, truncated, corrupt, or would unpack beyond ``options.max_unpacked`` bytes."""
    expected = KIND_NAMES[kind]
    head = read_head(uri, options)
    if head.startswith(_CFB):
        raise MediaError(uri, _cfb_reason(uri, expected))
    if not head.startswith(b"PK"):
        raise MediaError(uri, f"not {a(expected)} (looks like {describe(head)})")
    try:
        zf = zipfile.ZipFile(uri)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise MediaError(uri, f"truncated or corrupt {expected} (its zip container cannot be read: {e}); "
                              "re-save or re-download the file") from e
    try:
        _check_members(uri, zf, infos, kind, options)
    except BaseException:
        zf.close()
        raise
    return zf


def _check_members(uri: str, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], kind: str,
                   options: DocOptions) -> None:
    expected = KIND_NAMES[kind]
    unpacked = sum(i.file_size for i in infos)
    if unpacked > options.max_unpacked:
        raise MediaError(uri, f"{a(expected)} that unpacks to {unpacked / 2**20:.0f} MiB, over the limit of "
                              f"{options.max_unpacked / 2**20:.0f} MiB (zip bomb?); raise DocOptions.max_unpacked "
                              "if you trust it")
    if any(i.flag_bits & 0x1 for i in infos):
        raise MediaError(uri, f"{a('password-protected ' + expected)} (encrypted zip members); save a copy "
                              "without a password")
    found = zip_kind(zf)
    if found is None:
        raise MediaError(uri, f"not {a(expected)} (a zip archive without its parts; a plain .zip file?)")
    if found != kind:
        raise MediaError(uri, f"wrong extension: the file is {a(KIND_NAMES[found])}, not {a(expected)}; rename it")


def zip_kind(zf: zipfile.ZipFile) -> str | None:
    """The format an office/e-book zip container holds (``"docx"``, ``"odt"``, ``"epub"``…), or ``None``."""
    names = set(zf.namelist())
    for member, kind in _ZIP_MEMBERS:
        if member in names:
            return kind
    if "mimetype" in names:
        try:
            return _MIMETYPES.get(zf.read("mimetype").strip())
        except (zipfile.BadZipFile, OSError, KeyError, EOFError):
            return None
    return None


def _cfb_reason(uri: str, expected: str) -> str:
    """Why an OLE2 compound file is refused: an encrypted Office file, or a legacy binary one."""
    with open_binary(uri) as f:
        data = f.read(8 * 2**20)
    if _ENCRYPTION_INFO in data:
        return f"{a('password-protected ' + expected)} (an encrypted Office file); save a copy without a password"
    return (f"not {a(expected)}: a legacy binary Office file (.doc/.xls/.ppt); save it in the newer format "
            "(.docx/.xlsx/.pptx) to index it")


def library_error(uri: str, kind: str, e: BaseException) -> MediaError:
    """A :class:`MediaError` for a library's failure on a container that opened: corrupt parts."""
    msg = str(e).strip() or type(e).__name__
    return MediaError(uri, f"corrupt {KIND_NAMES[kind]} ({type(e).__name__}: {msg[:200]})")


def basename(uri: str) -> str:
    return os.path.basename(uri)


class Outline:
    """Sections under headings, for the readers of flowing documents (HTML, Word, ODT): text goes to the
    open section; a heading of level ``L`` closes it and the open headings of level ``>= L``."""

    def __init__(self) -> None:
        self.parts: list[DocPart] = []
        self.open: list[tuple[int, str]] = []
        self.body: list[str] = []
        self.title: str | None = None  # the open section's heading
        self.meta: dict[str, Any] = {}

    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.open)

    def text(self, text: str) -> None:
        if text.strip():
            self.body.append(text.strip())

    def heading(self, level: int, title: str, meta: dict[str, Any] | None = None) -> None:
        self.flush()
        while self.open and self.open[-1][0] >= level:
            self.open.pop()
        self.open.append((level, title))
        self.title, self.meta = title, meta or {}

    def role_part(self, role: str, text: str) -> None:
        if text.strip():
            self.parts.append(DocPart(text.strip(), role=role, section=self.path()))

    def flush(self) -> None:
        body = "\n".join(self.body)
        self.body = []
        if self.title is None and not body:
            return
        text = f"{self.title}\n\n{body}" if self.title and body else self.title or body
        self.parts.append(DocPart(text, title=self.title, section=self.path(), meta=self.meta))
        self.title, self.meta = None, {}

    def close(self) -> list[DocPart]:
        self.flush()
        return self.parts
