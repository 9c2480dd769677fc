"""load_text on the generated corpus: encodings, newlines, titles, limits, and failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniret.errors import MediaError
from omniret.media.text import TextDocument, load_text, markdown_title, rst_title, strip_markdown


def test_utf8(corpus: dict[str, Path]) -> None:
    doc = load_text(corpus["utf8.txt"])
    assert doc.encoding == "utf-8"
    assert doc.text == "Plain UTF-8 text: naïve café ✓.\n"
    assert [c.text for c in doc] == ["Plain UTF-8 text: naïve café ✓."]


def test_utf8_bom_is_dropped(corpus: dict[str, Path]) -> None:
    doc = load_text(corpus["utf8_bom.txt"])
    assert doc.text == "Text with a byte-order mark.\n"


def test_utf16_with_bom_and_crlf(corpus: dict[str, Path]) -> None:
    doc = load_text(corpus["utf16.txt"])
    assert doc.encoding == "utf-16"
    assert doc.text == "UTF-16 text: grüße aus köln, ça va?\nSecond line.\n"


def test_latin1_is_detected(corpus: dict[str, Path]) -> None:
    doc = load_text(corpus["latin1.txt"])
    assert doc.encoding != "utf-8"
    assert "Le café crème et la brûlée: naïve façade, garçon, où êtes-vous?" in doc.text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Grüße aus Köln, schöne Straße.", "cp1252"),
        ("café", "cp1252"),
        ("“Smart quotes” – and an ellipsis…", "cp1252"),
        ("Привет, как дела? Всё хорошо, спасибо. Погода сегодня прекрасная.", "cp1251"),
    ],
)
def test_legacy_encodings(tmp_path: Path, text: str, encoding: str) -> None:
    p = tmp_path / "legacy.txt"
    p.write_bytes(text.encode(encoding))
    assert load_text(p).text == text


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom(tmp_path: Path, codec: str) -> None:
    text = "No byte-order mark here, but still UTF-16: Grüße.\nLine two.\n"
    p = tmp_path / "nobom.txt"
    p.write_bytes(text.encode(codec))
    doc = load_text(p)
    assert doc.encoding == codec and doc.text == text


def test_newlines_are_normalised(corpus: dict[str, Path]) -> None:
    assert load_text(corpus["crlf.txt"]).text == "line one\nline two\nline three\n"


@pytest.mark.parametrize("name", ["blank.txt", "whitespace.txt"])
def test_empty_or_blank_gives_zero_chunks(corpus: dict[str, Path], name: str) -> None:
    doc = load_text(corpus[name])
    assert isinstance(doc, TextDocument)
    assert len(doc) == 0 and list(doc) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("binary.txt", "not text (binary data"),
        ("photo.jpg", "not text (binary data; looks like a JPEG image)"),
        ("animated.gif", "not text"),
        ("truncated.png", "not text (binary data; looks like a PNG image)"),
        ("folder.jpg", "is a folder, not a file"),
    ],
)
def test_bad_text_files(corpus: dict[str, Path], name: str, reason: str) -> None:
    with pytest.raises(MediaError) as info:
        load_text(corpus[name])
    assert info.value.reason.startswith(reason), info.value.reason


def test_size_limit(corpus: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="text file too large.*raise max_bytes"):
        load_text(corpus["latin1.txt"], max_bytes=100)
    assert load_text(corpus["latin1.txt"], max_bytes=10_000).text


def test_vanished_and_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MediaError, match="file vanished"):
        load_text(tmp_path / "nope.txt")
    p = tmp_path / "a.txt"
    p.write_text("hello")

    def refuse(path: str, mode: str = "r") -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("omniret.media._io._open_fd", refuse)
    with pytest.raises(MediaError, match="permission denied"):
        load_text(p)


def test_markdown_title_and_strip(corpus: dict[str, Path]) -> None:
    doc = load_text(corpus["notes.md"])
    assert doc.title == "The Real Title"
    assert "*emphasis*" in doc.text
    stripped = load_text(corpus["notes.md"], strip_markup=True)
    assert "Some emphasis and a link." in stripped.text
    assert "# " not in stripped.text and "http" not in stripped.text
    assert load_text(corpus["setext.md"]).title == "Setext Title"
    assert load_text(corpus["utf8.txt"]).title is None


def test_rst_title(corpus: dict[str, Path]) -> None:
    assert load_text(corpus["guide.rst"]).title == "Guide"
    assert rst_title("no title here\n") is None


def test_title_helpers() -> None:
    assert markdown_title("text\n\n## Second level ##\n# First\n") == "Second level"
    assert markdown_title("Heading\n-------\n\n# Later\n") == "Heading"
    assert markdown_title("#hashtag is not a heading\n") is None
    assert (
        markdown_title('---\ntitle: "From Front Matter"\ntags: [a]\n---\n# Heading\n') == "From Front Matter"
    )
    assert markdown_title("---\nauthor: me\n---\nBody\n\n# Heading\n") == "Heading"
    assert markdown_title("---\nauthor: me\n---\nNo heading at all\n") is None
    assert strip_markdown("![a cat](c.png) **bold** `code` <b>x</b>\n> quote") == "a cat bold code x\nquote"


def test_chunks_are_slices_of_the_document(tmp_path: Path) -> None:
    p = tmp_path / "long.txt"
    p.write_text(("A sentence about retrieval. " * 20 + "\n\n") * 10)
    doc = load_text(p, max_chars=300, overlap=50)
    assert len(doc) > 5
    for c in doc:
        assert doc.text[c.start : c.end] == c.text and len(c.text) <= 300
