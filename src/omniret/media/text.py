"""Text files: encoding detection, newline normalisation, titles, and overlapping chunks.

:func:`load_text` reads a file (up to ``max_bytes``), decodes it (byte-order mark, then strict
UTF-8, then ``charset-normalizer``; binary data is refused), normalises newlines to ``\\n``,
optionally strips light Markdown markup, takes the first heading as a title (Markdown ATX or
setext, reStructuredText underlined titles) and splits the text with :func:`chunk_text`.

Chunk sizes default to 800 characters with 150 of overlap, sized for all-MiniLM-L6-v2, whose
window is 256 word pieces (English averages ~4 characters a word piece, so 800 characters is
~200 pieces, leaving room for longer words and punctuation).
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import charset_normalizer

from omniret.errors import MediaError, OmniretError
from omniret.media._io import describe, file_size, open_binary

DEFAULT_MAX_CHARS = 800
DEFAULT_OVERLAP = 150
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MARKDOWN_EXT = frozenset({".md", ".markdown"})
_RST_EXT = frozenset({".rst"})

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"[.!?。！？…][\"'”’)\]]*\s+")
_LINE = re.compile(r"\n\s*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a text: ``text == source[start:end]`` (character offsets, end exclusive)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class TextDocument(Sequence[Chunk]):
    """A decoded text file: a sequence of its :class:`Chunk` s, plus the full text, title, encoding."""

    text: str
    chunks: tuple[Chunk, ...]
    title: str | None = None
    encoding: str = "utf-8"

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Chunk]: ...
    def __getitem__(self, i: int | slice) -> Chunk | Sequence[Chunk]:
        return self.chunks[i]

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self.chunks)


# -- reading -------------------------------------------------------------------------------------
def load_text(
    path: str | os.PathLike[str],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
    max_bytes: int = DEFAULT_MAX_BYTES,
    strip_markup: bool = False,
) -> TextDocument:
    """Read, decode and chunk a text file (see the module docstring).

    Empty or whitespace-only files give a document with zero chunks. Raises :class:`MediaError`
    for unreadable, binary or oversized files.
    """
    uri = os.fspath(path)
    data, encoding = read_text_bytes(uri, max_bytes=max_bytes)
    text = decode_text(uri, data, encoding)
    ext = os.path.splitext(uri)[1].lower()
    title = None
    if ext in _MARKDOWN_EXT:
        title = markdown_title(text)
        if strip_markup:
            text = strip_markdown(text)
    elif ext in _RST_EXT:
        title = rst_title(text)
    return TextDocument(text, tuple(chunk_text(text, max_chars=max_chars, overlap=overlap)), title, encoding)


def read_text_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The whole text of a small text file (a query list, a label list), its encoding detected as at ingest.

    A binary file, a FIFO or a device, a missing or huge file raise :class:`MediaError` naming the file and
    the reason (never a ``UnicodeDecodeError``)."""
    uri = os.fspath(path)
    data, encoding = read_text_bytes(uri, max_bytes=max_bytes)
    return decode_text(uri, data, encoding)


def read_text_bytes(uri: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, str]:
    """Read a text file's bytes and detect their encoding: ``(data, encoding name)``."""
    with open_binary(uri) as f:
        size = file_size(f)
        if size > max_bytes:
            raise MediaError(
                uri,
                f"text file too large: {size / 2**20:.1f} MiB exceeds the limit of "
                f"{max_bytes / 2**20:.1f} MiB; raise max_bytes or split the file",
            )
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise MediaError(uri, f"cannot read file ({e.strerror or e})") from e
    if len(data) > max_bytes:  # it grew while we read it
        raise MediaError(uri, f"text file too large: over {max_bytes / 2**20:.1f} MiB; raise max_bytes")
    return data, detect_encoding(uri, data)


def detect_encoding(uri: str, data: bytes) -> str:
    """Encoding of ``data``: a byte-order mark, else UTF-8 if it decodes strictly, else the
    best ``charset-normalizer`` guess. Binary data raises :class:`MediaError`."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if b"\x00" not in data:
            return "utf-8"
    utf16 = _utf16_without_bom(data[:8192])
    if utf16 is not None:
        return utf16
    if b"\x00" in data[:8192]:  # NULs that are not UTF-16: binary
        raise MediaError(uri, f"not text (binary data; looks like {describe(data[:512])})")
    if _looks_western(data[:1_000_000]):
        return "cp1252"
    best = charset_normalizer.from_bytes(data[:1_000_000]).best()
    if best is None:
        raise MediaError(uri, f"not text (unknown encoding; looks like {describe(data[:512])})")
    return best.encoding


def _utf16_without_bom(head: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` if ``head`` looks like BOM-less UTF-16 of mostly Latin text
    (one byte of each pair NUL at least 90% of the time, the other almost never), else ``None``."""
    n = len(head) // 2 * 2
    if n < 4:
        return None
    even, odd = head[0:n:2], head[1:n:2]
    z_even, z_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    for name, zeros, other in (("utf-16-le", z_odd, z_even), ("utf-16-be", z_even, z_odd)):
        if zeros >= 0.9 and other <= 0.02:
            try:
                head[:n].decode(name)
            except UnicodeDecodeError:
                return None
            return name
    return None


def _looks_western(data: bytes) -> bool:
    """True if ``data`` reads as Western European windows-1252 (a superset of printable Latin-1).

    ``charset-normalizer`` is unreliable on short Western texts (``"café crème"`` comes back as
    Baltic cp1257), while windows-1252 is by far the most common legacy encoding (WHATWG decodes
    ``latin-1`` labels as windows-1252). Accept it when it decodes and the non-ASCII characters
    are a minority of accented Latin letters (< 30% of letters) or typographic punctuation;
    Cyrillic or Greek bytes read this way turn almost every letter into an accented one.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = accented = 0
    for c in text:
        if c.isalpha():
            letters += 1
            if ord(c) > 127:
                if "LATIN" not in unicodedata.name(c, ""):
                    return False
                accented += 1
        elif ord(c) > 127 and unicodedata.category(c)[0] not in "PSZN":
            return False
    return letters > 0 and accented < 0.3 * letters


def decode_text(uri: str, data: bytes, encoding: str) -> str:
    """Decode and normalise: ``\\r\\n`` and ``\\r`` become ``\\n``; a leading BOM is dropped."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as e:
        raise MediaError(uri, f"cannot decode text as {encoding}") from e
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    controls = sum(1 for c in text[:10_000] if ord(c) < 32 and c not in "\t\n\f\v")
    if controls > max(2, len(text[:10_000]) // 100):
        raise MediaError(uri, "not text (too many control characters; binary data?)")
    return text


# -- titles and markup ---------------------------------------------------------------------------
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+)$", re.M)
_UNDERLINE = re.compile(r"^(?P<title>[^\n]*\S[^\n]*)\n(?P<line>=+|-+|~+|\^+|\*+|#+)[ \t]*$", re.M)


def markdown_title(text: str) -> str | None:
    """The document's title: a ``title:`` in YAML front matter, else the first Markdown heading
    (``# Title`` or a setext ``Title`` / ``=====``), if any."""
    front = _FRONT_MATTER.match(text)
    if front is not None:
        found = _FRONT_TITLE.search(front.group(1))
        if found is not None:
            return found.group(1).strip().strip("\"'") or None
        text = text[front.end() :]
    atx = _ATX.search(text)
    setext = _UNDERLINE.search(text)
    if setext is not None and setext.group("line")[0] not in "=-":
        setext = None
    if atx is None and setext is None:
        return None
    if setext is None or (atx is not None and atx.start() < setext.start()):
        return atx.group(1).strip() if atx else None
    return setext.group("title").strip()


def rst_title(text: str) -> str | None:
    """The first reStructuredText section title (a line underlined with ``=``, ``-``, ``~``…)."""
    for m in _UNDERLINE.finditer(text):
        title = m.group("title").strip()
        if len(m.group("line")) >= len(title) and set(title) != set(m.group("line")[0]):
            return title
    return None


_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^```[^\n]*$|^~~~[^\n]*$", re.M), ""),  # code fences (keep the code)
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images → alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links → link text
    (re.compile(r"<[^>\n]+>"), ""),  # inline HTML tags
    (re.compile(r"^ {0,3}#{1,6}[ \t]+", re.M), ""),  # heading markers
    (re.compile(r"^ {0,3}>[ \t]?", re.M), ""),  # block quotes
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # italic
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
)


def strip_markdown(text: str) -> str:
    """Remove light Markdown markup (fences, link/image syntax, emphasis, heading marks, HTML)."""
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return text


# -- chunking ------------------------------------------------------------------------------------
def chunk_text(
    text: str, *, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_chars`` characters, overlapping by at most ``overlap``.

    Greedy: each chunk ends at the last paragraph break in its second half, else the last
    sentence end, else the last line break, else the last space, else a hard cut at
    ``max_chars``; the next chunk starts at the first sentence (else word) start at or after
    ``end - overlap``. Chunks are stripped of surrounding whitespace, so ``chunk.text ==
    text[start:end]``, every non-whitespace character lies in some chunk, and whitespace-only
    text gives ``[]``. Requires ``0 <= overlap < max_chars // 2``.
    """
    if max_chars < 2 or not 0 <= overlap < max_chars // 2:
        raise OmniretError(
            f"bad chunk sizes max_chars={max_chars}, overlap={overlap}: need max_chars >= 2 and "
            "0 <= overlap < max_chars // 2 (e.g. max_chars=800, overlap=150)"
        )
    chunks: list[Chunk] = []
    n = len(text)
    start = _skip_space(text, 0)
    while start < n:
        end = n if n - start <= max_chars else _break_at(text, start, max_chars)
        s, e = start, end
        while e > s and text[e - 1].isspace():
            e -= 1
        chunks.append(Chunk(text[s:e], s, e))
        if end >= n:
            break
        start = _skip_space(text, _next_start(text, start, end, overlap))
    return chunks


def _skip_space(text: str, i: int) -> int:
    m = _SPACE.match(text, i)
    return m.end() if m else i


def _break_at(text: str, start: int, max_chars: int) -> int:
    """End (exclusive) of the chunk starting at ``start``: the best boundary in its second half."""
    lo, hi = start + max_chars // 2, start + max_chars
    for pattern in (_PARAGRAPH, _SENTENCE, _LINE, _SPACE):
        last = None
        for m in pattern.finditer(text, lo, hi + 1):
            if m.start() > lo:
                last = m
        if last is not None:
            return min(last.end(), hi) if pattern is not _PARAGRAPH else last.start() + 1
    return hi


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """Start of the chunk after ``[start, end)``: a sentence or word start in ``[end - overlap, end]``."""
    lo = max(end - overlap, start + 1)
    if lo >= end:
        return end
    for pattern in (_SENTENCE, _SPACE):
        m = pattern.search(text, lo - 1, end)
        if m is not None and m.end() <= end:
            return max(m.end(), lo)
    return lo
