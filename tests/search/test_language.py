"""Per-query language detection (langdetect with a fixed seed, plus writing-system rules)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from omniret.query import language as lg


@pytest.mark.parametrize("text, code", [
    ("ein rotes Fahrrad lehnt an der Wand", "de"), ("una bicicleta roja apoyada en la pared", "es"),
    ("un vélo rouge appuyé contre le mur", "fr"), ("a red bicycle leaning against the wall", "en"),
    ("壁に立てかけた赤い自転車", "ja"), ("靠在墙上的红色自行车", "zh"), ("벽에 기대어 있는 빨간 자전거", "ko"),
])
def test_detects_the_language(text: str, code: str) -> None:
    found = lg.detect_language(text)
    assert found is not None and found.code == code and 0.8 <= found.prob <= 1.0


def test_deterministic_and_undecided() -> None:
    texts = ["la casa", "cat", "Kaffee", "die Katze schläft auf dem Sofa"] * 3
    first = [lg.detect_language(t) for t in texts]
    assert first == [lg.detect_language(t) for t in texts]  # the same answer every time (fixed seed)
    assert lg.detect_language("12345 !!") is None and lg.detect_language("") is None
    assert lg.detect_language("xq zv", min_prob=1.01) is None  # nothing is that sure


def test_script_rules() -> None:
    assert lg.script_language("日本刀とカタナ") == "ja"  # kana decides
    assert lg.script_language("日本刀") == "zh"  # Han only: Chinese (the rule's known ambiguity)
    assert lg.script_language("한국어") == "ko" and lg.script_language("plain") is None


def test_note_only_for_restricted_models() -> None:
    en = frozenset({"en"})
    assert lg.language_note("eine Katze schläft auf dem Sofa", "offline", None) is None  # multilingual: no check
    assert lg.language_note("a cat sleeps on the sofa", "offline", en) is None
    note = lg.language_note("eine Katze schläft auf dem Sofa", "offline", en)
    assert note is not None and "'de'" in note and "offline:multilingual" in note


def test_index_warns_once_per_language(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import omniret

    (tmp_path / "a.txt").write_text("cats sleep in the sun", encoding="utf-8")
    with omniret.open(tmp_path / "idx", model="fake") as idx:
        idx.add([str(tmp_path / "a.txt")], workers=0)
        with caplog.at_level(logging.WARNING, logger="omniret.index"):
            idx.search("eine Katze schläft auf dem Sofa")
        assert not caplog.records  # the fake model claims no language restriction
        idx.encoder.languages = frozenset({"en"})
        with caplog.at_level(logging.WARNING, logger="omniret.index"):
            idx.search("eine Katze schläft auf dem Sofa")
            idx.search("die Katze schläft auf dem Sofa im Wohnzimmer")
            idx.search("a cat sleeps on the sofa")
        assert [r.getMessage().count("'de'") for r in caplog.records] == [1]
        assert idx.language_note("eine Katze schläft auf dem Sofa") is not None


def test_the_search_path_checks_languages_at_most_every_tenth_of_a_second(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection is ~5 ms of pure Python under a lock: a server's burst of searches must not queue behind
    it. Within 0.1 s only the first query is checked; a query after that is checked again."""
    import omniret
    from omniret import index as index_mod
    from omniret.query import language as lg

    checked: list[str] = []
    real = lg.detect_cached
    monkeypatch.setattr(lg, "detect_cached", lambda text: checked.append(text) or real(text))
    clock = [1000.0]
    monkeypatch.setattr(index_mod.time, "monotonic", lambda: clock[0])
    (tmp_path / "a.txt").write_text("cats sleep in the sun", encoding="utf-8")
    with omniret.open(tmp_path / "idx", model="fake") as idx:
        idx.add([str(tmp_path / "a.txt")], workers=0)
        idx.encoder.languages = frozenset({"en"})
        for i in range(20):
            idx.search(f"a longer query with a number {i}")
        assert checked == ["a longer query with a number 0"]
        clock[0] += 0.2
        idx.search("eine Katze schläft auf dem Sofa")
        assert checked[-1] == "eine Katze schläft auf dem Sofa" and len(checked) == 2


@pytest.mark.parametrize("text", ["a cat sleeping", "mountain lake view", "budget for 2024", "apt pinning guide",
                                  "tables across pages", "rocket", "Package management"])
def test_short_english_queries_get_no_note(text: str) -> None:
    """langdetect calls these Romanian, Finnish, Danish, Tagalog, French, Swedish and Dutch (p = 1.0): a
    note on them would tell an English user their English query is foreign."""
    assert lg.language_note(text, "offline", frozenset({"en"})) is None


@pytest.mark.parametrize("text", ["eine Katze schläft", "un vélo rouge", "una bicicleta roja apoyada en la pared",
                                  "壁に立てかけた赤い自転車"])
def test_clearly_foreign_queries_get_the_note(text: str) -> None:
    assert lg.language_note(text, "offline", frozenset({"en"})) is not None
