"""Which language a query is written in (per query, deterministic).

:func:`detect_language` wraps ``langdetect`` (a port of Shuyo's language-detection: character
n-gram profiles of 55 languages scored by a naive Bayes model over random n-gram draws). Its draws
are random, so the detector's seed is fixed (:data:`SEED`) and every call is made under one lock:
the same text always gets the same answer. Chinese variants (``zh-cn``, ``zh-tw``) are reported as
``zh``. Very short or ambiguous texts (no language with probability ≥ ``min_prob``, or no letters at
all) give ``None`` rather than a guess.

The writing system decides first where it is unambiguous (:func:`script_language`): kana means
Japanese, Hangul Korean, Han characters without either Chinese. langdetect's Korean profile holds
Hanja, so on short all-Han queries it answers ``ko`` (5 of 117 Chinese and Japanese captions in
``bench/multilingual/captions.jsonl``); the script rule removes that error.

The index uses it to say when a query's language is outside its text space (an English-only model
such as ``offline`` asked in German: see :meth:`omniret.index.Index.search`), and the context
builder passes it on so a generator can answer in the question's language.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

SEED = 0
MIN_PROB = 0.80
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Language:
    """A detected language: ISO 639-1 ``code`` (``zh`` for Chinese) and its probability."""

    code: str
    prob: float


def script_language(text: str) -> str | None:
    """``ja`` if ``text`` has kana, else ``ko`` if it has Hangul, else ``zh`` if it has Han characters, else None."""
    kana = hangul = han = False
    for ch in text:
        o = ord(ch)
        kana |= 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9D
        hangul |= 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F
        han |= 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
    return "ja" if kana else "ko" if hangul else "zh" if han else None


def detect_language(text: str, *, min_prob: float = MIN_PROB) -> Language | None:
    """The language of ``text``, or ``None`` when it cannot be told with probability ≥ ``min_prob``."""
    if not isinstance(text, str) or not any(ch.isalpha() for ch in text):
        return None
    by_script = script_language(text)
    if by_script is not None:
        return Language(by_script, 1.0)
    try:
        from langdetect import DetectorFactory, detect_langs
        from langdetect.lang_detect_exception import LangDetectException
    except ImportError:  # optional: without it every query counts as of unknown language
        return None
    with _LOCK:
        DetectorFactory.seed = SEED
        try:
            ranked = detect_langs(text)
        except LangDetectException:
            return None
    if not ranked or ranked[0].prob < min_prob:
        return None
    code = str(ranked[0].lang).split("-")[0]
    return Language(code, float(ranked[0].prob))


@lru_cache(maxsize=4096)
def detect_cached(text: str) -> Language | None:
    """:func:`detect_language` with the default threshold, memoised (repeated queries cost nothing)."""
    return detect_language(text)


def outside(language: Language | None, supported: frozenset[str] | None) -> bool:
    """Whether a detected ``language`` falls outside a model's ``supported`` languages (None = any)."""
    return language is not None and supported is not None and language.code not in supported


#: a Latin-script text in plain ASCII letters needs this many words before a note calls it foreign
NOTE_MIN_WORDS = 6


def _enough_evidence(text: str) -> bool:
    """Whether ``text`` carries enough to call it foreign in a note: langdetect on short ASCII texts is
    unreliable ("a cat sleeping" came back Romanian, "mountain lake view" Finnish, "budget for 2024" Danish,
    each with probability 1.0). A note needs a decisive writing system (kana, Hangul, Han), a letter
    outside ASCII (ä, é, ñ, ç …, which English queries rarely have), or :data:`NOTE_MIN_WORDS` words."""
    if script_language(text) is not None or any(ch.isalpha() and ord(ch) > 127 for ch in text):
        return True
    return len(text.split()) >= NOTE_MIN_WORDS


def language_note(text: str, model: str, supported: frozenset[str] | None) -> str | None:
    """A one-line note when ``text`` is written in a language ``model``'s text space was not trained on.

    ``None`` when the model is multilingual (``supported is None``) — then nothing is detected at all —
    or when the language is supported or cannot be told.
    """
    if supported is None or not isinstance(text, str):
        return None
    if not _enough_evidence(text):  # checked first: most short queries never reach langdetect
        return None
    lang = detect_cached(text)
    if not outside(lang, supported):
        return None
    return (f"the query looks {lang.code!r} (langdetect) but model {model!r} embeds {', '.join(sorted(supported))} "  # type: ignore[union-attr]
            "text only; results may be poor. For queries in any language build the index with "
            "model='offline:multilingual' (images + text) or 'e5' (text, PDFs)")
