"""chunk_text: sizes, overlap, boundaries, coverage; examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniret.errors import OmniretError
from omniret.media.text import Chunk, chunk_text


def _check_invariants(text: str, chunks: list[Chunk], max_chars: int, overlap: int) -> None:
    covered = [False] * len(text)
    prev: Chunk | None = None
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text and c.text == c.text.strip()
        assert 0 < c.end - c.start <= max_chars
        if prev is not None:
            assert c.start > prev.start  # progress
            assert prev.end - c.start <= overlap  # overlap never more than asked
        for i in range(c.start, c.end):
            covered[i] = True
        prev = c
    missed = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert missed == [], f"characters not in any chunk at {missed[:5]}"


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  Hello world.  \n") == [Chunk("Hello world.", 2, 14)]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \n"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


def test_breaks_on_paragraphs_first() -> None:
    para = "Word " * 30  # 150 chars
    text = (para.strip() + "\n\n") * 6
    chunks = chunk_text(text, max_chars=400, overlap=50)
    # every chunk ends at a paragraph end (the second half of the window always holds one)
    assert all(c.text.endswith("Word") for c in chunks)
    assert all(text[c.end : c.end + 2] in ("\n\n", "\n", "") for c in chunks[:-1])
    _check_invariants(text, chunks, 400, 50)


def test_breaks_on_sentences_when_no_paragraph() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = sentence * 40
    chunks = chunk_text(text, max_chars=300, overlap=60)
    assert len(chunks) > 3
    assert all(c.text.endswith("dog.") for c in chunks)
    # later chunks start at a sentence start inside the overlap
    assert all(c.text.startswith("The quick") for c in chunks)
    assert all(0 < prev.end - c.start <= 60 for prev, c in zip(chunks, chunks[1:], strict=False))
    _check_invariants(text, chunks, 300, 60)


def test_breaks_on_words_when_no_sentence() -> None:
    text = " ".join(f"w{i}" for i in range(500))
    chunks = chunk_text(text, max_chars=100, overlap=20)
    words = set(text.split())
    for c in chunks:
        assert set(c.text.split()) <= words  # no word cut in half
    _check_invariants(text, chunks, 100, 20)


def test_hard_cut_without_spaces_keeps_exact_overlap() -> None:
    text = "x" * 1000
    chunks = chunk_text(text, max_chars=100, overlap=30)
    assert [c.end - c.start for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    assert all(prev.end - c.start == 30 for prev, c in zip(chunks, chunks[1:], strict=False))
    _check_invariants(text, chunks, 100, 30)


def test_zero_overlap_partitions_the_text() -> None:
    text = "alpha beta gamma delta. " * 50
    chunks = chunk_text(text, max_chars=120, overlap=0)
    assert all(c.start >= prev.end for prev, c in zip(chunks, chunks[1:], strict=False))
    assert "".join(text[c.start : c.end] for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_defaults_fit_minilm_window() -> None:
    text = "Retrieval engines split long documents into passages. " * 100
    chunks = chunk_text(text)
    assert all(len(c.text) <= 800 for c in chunks)
    assert all(prev.end - c.start <= 150 for prev, c in zip(chunks, chunks[1:], strict=False))


@pytest.mark.parametrize(("max_chars", "overlap"), [(1, 0), (100, 50), (100, -1), (100, 80)])
def test_bad_sizes_are_rejected(max_chars: int, overlap: int) -> None:
    with pytest.raises(OmniretError, match="overlap < max_chars // 2"):
        chunk_text("some text", max_chars=max_chars, overlap=overlap)


_alphabet = st.sampled_from(list("abcde fghij") + [" ", "  ", "\n", "\n\n", ". ", "! ", "é", "\t", "“"])


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(_alphabet, max_size=400).map("".join),
    max_chars=st.integers(min_value=2, max_value=120),
    data=st.data(),
)
def test_properties_on_random_texts(text: str, max_chars: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=max_chars // 2 - 1))
    chunks = chunk_text(text, max_chars=max_chars, overlap=overlap)
    _check_invariants(text, chunks, max_chars, overlap)
    if text.strip():
        assert chunks and chunks[0].start == len(text) - len(text.lstrip())
        assert chunks[-1].end == len(text.rstrip())
    else:
        assert chunks == []


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=3000))
def test_properties_on_arbitrary_unicode(text: str) -> None:
    chunks = chunk_text(text, max_chars=200, overlap=40)
    _check_invariants(text, chunks, 200, 40)
