"""Evidence for a generator: ``Index.context(question, budget_tokens=..., modalities=...)``.

Retrieval-augmented generation over every modality an index holds, in the steps of UniversalRAG
(Yeo et al. 2025, arXiv 2504.20734) and HM-RAG (Liu et al. 2025, arXiv 2504.12330):

1. **Route and retrieve.** One calibrated search over the requested modalities (``route="all"``:
   per-(space, modality) T-norm, so text chunks, pages, images, video moments and sounds compete on
   one scale), or the LLM router (``route="llm"``, :mod:`omniret.query.routing`), which picks the
   modality and granularity UniversalRAG's way. ``candidates`` hits are taken (default 40).
2. **Re-rank** (optional, ``rerank=``): the second stage of :mod:`omniret.query.rerank`.
3. **De-duplicate**: the same id, the same (file, span), a hit whose parent or child is already in
   (a layout block and its page, a chunk and its file), the same text (case and spacing folded),
   and near-duplicates whose stored vectors have cosine ≥ ``dedupe`` (default 0.97).
4. **Diversify** with MMR (Carbonell & Goldstein 1998, :func:`omniret.methods.diversity.mmr`): relevance
   = the first stage's (calibrated, re-ranked) order, 1 for the best hit down to 0 for the last;
   similarity = cosine of the stored vectors; λ = ``mmr_lambda`` (default 0.7).
5. **Fit the budget**: pieces are rendered (:meth:`Piece.render`) and taken in MMR order while their
   tokens fit ``budget_tokens``; a text too long for the room left is cut (at least
   :data:`MIN_PIECE_TOKENS` kept), a piece that cannot fit is skipped.

Tokens are counted with the generator's tokenizer when given — a Hugging Face tokenizer name or folder
(``transformers.AutoTokenizer``; local files are used as they are, a name needs the hub or its cache)
or any callable ``text -> int`` (or ``text -> list of tokens``) — else with :func:`approx_tokens`, a
cheap estimate: one token per CJK character and one per four other characters (GPT- and LLaMA-style BPE
tokenizers average about four characters per English token; code, numbers and rare words take more).
Because it is an estimate, an approximate budget keeps a margin: only :data:`APPROX_MARGIN` of it is
filled.

Every piece carries its citation (:class:`Citation`): the file, the page and layout box of PDF
evidence (a block's own box, a page model's matched region, or the box of a page hit's best matched block), the time range of audio and video moments, and a thumbnail for images, pages and video
frames (the image file itself, or ``thumbnail_url.format(id=...)`` when a URL template is given — the
HTTP server passes its ``/thumbs/{id}`` route).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from omniret.errors import QueryError
from omniret.items import Hit, Modality
from omniret.methods.diversity import mmr

DEFAULT_BUDGET = 2000
DEFAULT_CANDIDATES = 40
DEDUPE = 0.97
MMR_LAMBDA = 0.7
MIN_PIECE_TOKENS = 48
#: the approximate counter's budgets keep this share free (it is an estimate)
APPROX_MARGIN = 0.9
TokenCounter = Callable[[str], int]
_PICTURES = (Modality.IMAGE, Modality.VIDEO, Modality.DOCUMENT)


def approx_tokens(text: str) -> int:
    """A cheap token estimate: one per CJK (Han, kana, Hangul) character plus one per four other characters."""
    cjk = sum(1 for ch in text if 0x3040 <= ord(ch) <= 0x30FF or 0x3400 <= ord(ch) <= 0x9FFF
              or 0xAC00 <= ord(ch) <= 0xD7A3 or 0xF900 <= ord(ch) <= 0xFAFF)
    return cjk + math.ceil((len(text) - cjk) / 4)


def token_counter(tokenizer: str | Callable[[str], Any] | None) -> tuple[TokenCounter, bool]:
    """``(count, exact)``: a counter for ``tokenizer`` (None: :func:`approx_tokens`, not exact)."""
    if tokenizer is None:
        return approx_tokens, False
    if callable(tokenizer):
        def count(text: str) -> int:
            n = tokenizer(text)
            return int(n) if isinstance(n, int | np.integer) else len(n)
        return count, True
    if isinstance(tokenizer, str):
        import os

        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=os.path.isdir(tokenizer))
        except Exception as e:
            raise QueryError(f"could not load the tokenizer {tokenizer!r}: {e}. Give a local tokenizer folder, a "
                             "callable text -> token count, or leave tokenizer out for the approximate count") from e
        return (lambda text: len(tok.encode(text, add_special_tokens=False))), True
    raise QueryError(f"tokenizer must be a name or folder, a callable or None, got {type(tokenizer).__name__}")


@dataclass(frozen=True)
class Citation:
    """Where a piece of evidence comes from."""

    uri: str
    page: int | None = None
    bbox: list[float] | None = None  # (x0, y0, x1, y1), page fractions, origin top-left
    start: float | None = None  # seconds (audio, video)
    end: float | None = None
    thumbnail: str | None = None  # a file path or URL of a picture of it
    label: str | None = None

    def describe(self) -> str:
        """``talk.mp4 @ 01:23–01:33``, ``manual.pdf p. 3, box 0.10,0.20–0.90,0.40``, or the path."""
        where = self.label or self.uri
        if self.page is not None and (not self.label or "p." not in self.label):
            where += f" p. {self.page}"
        if self.bbox:
            x0, y0, x1, y1 = self.bbox
            where += f", box {x0:.2f},{y0:.2f}–{x1:.2f},{y1:.2f}"
        if self.start is not None and self.end is not None and "@" not in where:
            where += f" @ {_clock(self.start)}–{_clock(self.end)}"
        return where


def _clock(t: float) -> str:
    m, s = divmod(int(round(t)), 60)
    return f"{m // 60:d}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m:02d}:{s:02d}"


@dataclass(frozen=True)
class Piece:
    """One piece of evidence: its number in the context, the hit it comes from, its text and citation."""

    n: int
    id: str
    modality: Modality
    score: float
    text: str
    citation: Citation
    tokens: int
    truncated: bool = False

    def render(self) -> str:
        """The piece as the generator reads it: ``[n] (modality) where`` then its text."""
        head = f"[{self.n}] ({self.modality.value}) {self.citation.describe()}"
        return f"{head}\n{self.text}" if self.text else head

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modality": self.modality.value}


@dataclass
class Context:
    """The evidence for one question, within ``budget_tokens`` (``used_tokens`` spent)."""

    question: str
    pieces: list[Piece]
    budget_tokens: int
    used_tokens: int
    language: str | None = None
    route: str = "all"
    exact_tokens: bool = False
    candidates: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        """Every piece, numbered, separated by blank lines."""
        return "\n\n".join(p.render() for p in self.pieces)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "language": self.language, "route": self.route,
                "budget_tokens": self.budget_tokens, "used_tokens": self.used_tokens,
                "exact_tokens": self.exact_tokens, "candidates": self.candidates, "dropped": dict(self.dropped),
                "pieces": [p.to_dict() for p in self.pieces]}


def citation_of(h: Hit, thumbnail_url: str | None = None) -> Citation:
    """The citation of a hit: file, page + box (PDF evidence), time range (audio, video), thumbnail."""
    meta = h.metadata or {}
    page = meta.get("page") if h.modality is Modality.DOCUMENT else None
    matched = meta.get("matched") if isinstance(meta.get("matched"), list) else []
    bbox = meta.get("bbox") or (meta.get("region") or {}).get("bbox") or \
        next((m.get("bbox") for m in matched if isinstance(m, dict) and m.get("bbox")), None)  # a page's best block
    timed = h.modality in (Modality.AUDIO, Modality.VIDEO) and h.span is not None
    picture = h.modality in _PICTURES and (h.modality is not Modality.DOCUMENT or page is not None)
    thumb = None
    if thumbnail_url and picture:
        thumb = thumbnail_url.format(id=h.id)
    elif h.modality is Modality.IMAGE:
        thumb = h.uri
    return Citation(uri=h.uri, page=int(page) if isinstance(page, int | float) else None,
                    bbox=[float(x) for x in bbox] if isinstance(bbox, list | tuple) and len(bbox) == 4 else None,
                    start=float(h.span[0]) if timed else None, end=float(h.span[1]) if timed else None,  # type: ignore[index]
                    thumbnail=thumb, label=meta.get("label") if isinstance(meta.get("label"), str) else None)


def evidence_text(h: Hit) -> str:
    """The words a generator gets for a hit: its text, else an image's caption or OCR text, else nothing."""
    if isinstance(h.text, str) and h.text.strip():
        return " ".join(h.text.split())
    for key in ("caption", "ocr_text", "alt", "title"):
        v = (h.metadata or {}).get(key)
        if isinstance(v, str) and v.strip():
            return f"{key}: {' '.join(v.split())}"
    return ""


def dedupe(hits: Sequence[Hit], vectors: np.ndarray, threshold: float = DEDUPE) -> tuple[list[int], dict[str, int]]:
    """Indices of the hits to keep (first occurrence wins) and how many each rule dropped.

    ``vectors``: (n, d) unit vectors of the hits (rows of NaN where none), for the near-duplicate rule.
    """
    keep: list[int] = []
    dropped = {"same item": 0, "parent or child": 0, "same text": 0, "near duplicate": 0}
    seen_ids: set[str] = set()
    parents: set[str] = set()
    places: set[tuple[str, Any]] = set()
    texts: set[str] = set()
    v = np.nan_to_num(np.asarray(vectors, dtype=np.float64))
    for i, h in enumerate(hits):
        place = (h.uri, tuple(h.span) if h.span else None, (h.metadata or {}).get("block"))
        folded = " ".join(evidence_text(h).lower().split())
        if h.id in seen_ids or place in places:
            dropped["same item"] += 1
        elif (h.parent_id is not None and h.parent_id in seen_ids) or h.id in parents:
            dropped["parent or child"] += 1
        elif folded and h.modality in (Modality.TEXT, Modality.DOCUMENT) and folded in texts:
            dropped["same text"] += 1
        elif keep and v.shape[1] and float(np.max(v[keep] @ v[i])) >= threshold and np.any(v[i]):
            dropped["near duplicate"] += 1
        else:
            keep.append(i)
            seen_ids.add(h.id)
            places.add(place)
            if folded:
                texts.add(folded)
            if h.parent_id:
                parents.add(h.parent_id)
    return keep, {k: n for k, n in dropped.items() if n}


def _cut(text: str, room: int, count: TokenCounter) -> str:
    """The longest prefix of ``text`` (at a word boundary, with an ellipsis) counting at most ``room`` tokens."""
    lo, hi = 0, len(text)
    while lo < hi:  # the largest length whose prefix fits
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + " …") <= room:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    if " " in cut[len(cut) // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + " …" if cut else ""


def _fit(hits: Sequence[Hit], order: Sequence[int], budget: int, count: TokenCounter,
         thumbnail_url: str | None) -> tuple[list[Piece], int, int]:
    """Pieces in ``order`` within ``budget`` tokens: ``(pieces, tokens used, pieces skipped)``."""
    pieces: list[Piece] = []
    used, skipped = 0, 0
    for i in order:
        h = hits[i]
        cite = citation_of(h, thumbnail_url)
        text = evidence_text(h)
        piece = Piece(len(pieces) + 1, h.id, h.modality, float(h.score), text, cite, 0)
        sep = 2 if pieces else 0  # the blank line between pieces
        cost = count(piece.render()) + sep
        if used + cost > budget:
            head = count(Piece(piece.n, h.id, h.modality, piece.score, "", cite, 0).render()) + sep + 1
            room = budget - used - head
            if not text or room < MIN_PIECE_TOKENS:
                skipped += 1
                continue
            short = _cut(text, room, count)
            piece = Piece(piece.n, h.id, h.modality, piece.score, short, cite, 0, truncated=True)
            cost = count(piece.render()) + sep
            if not short or used + cost > budget:
                skipped += 1
                continue
        pieces.append(Piece(piece.n, piece.id, piece.modality, piece.score, piece.text, cite, cost - sep,
                            piece.truncated))
        used += cost
    return pieces, used, skipped


def build_context(index: Any, question: str, *, budget_tokens: int = DEFAULT_BUDGET,
                  modalities: Sequence[str | Modality] | None = None, tokenizer: Any = None,
                  route: str = "all", rerank: str | None = None, candidates: int = DEFAULT_CANDIDATES,
                  mmr_lambda: float = MMR_LAMBDA, dedupe_threshold: float = DEDUPE,
                  thumbnail_url: str | None = None, **search_knobs: Any) -> Context:
    """The evidence for ``question`` from ``index`` within ``budget_tokens`` (see the module docstring).

    ``modalities``: only these (default: every modality in the index); ``route``: ``all`` (calibrated
    mix) or ``llm`` (UniversalRAG routing through the configured endpoint) or a modality; ``rerank``: a
    second stage (:mod:`omniret.query.rerank`); ``candidates``: first-stage hits considered; other
    keywords go to :meth:`~omniret.index.Index.search` (``where``, ``path_glob``...).
    """
    from omniret.query.language import detect_cached

    if not isinstance(question, str) or not question.strip():
        raise QueryError(f"the question must be a non-empty string, got {question!r}")
    if not isinstance(budget_tokens, int) or budget_tokens < 1:
        raise QueryError(f"budget_tokens must be a positive integer, got {budget_tokens!r}")
    if candidates < 1:
        raise QueryError(f"candidates must be >= 1, got {candidates}")
    count, exact = token_counter(tokenizer)
    budget = budget_tokens if exact else int(budget_tokens * APPROX_MARGIN)
    knobs: dict[str, Any] = {"k": candidates, "route": route, **search_knobs}
    if modalities:
        knobs["modality"] = list(modalities)
    if rerank not in (None, "none"):
        knobs["rerank"], knobs["rerank_depth"] = rerank, candidates
    hits = index.search(question, **knobs)
    found = len(hits)
    vectors = _vectors(index, hits)
    keep, dropped = dedupe(hits, vectors, dedupe_threshold)
    hits, vectors = [hits[i] for i in keep], vectors[keep]
    order = mmr(_relevance(len(hits)), np.nan_to_num(vectors @ vectors.T), mmr_lambda) if hits else []
    pieces, used, skipped = _fit(hits, order, budget, count, thumbnail_url)
    if skipped:
        dropped["over budget"] = skipped
    lang = detect_cached(question)
    return Context(question, pieces, budget_tokens, used, lang.code if lang else None, str(route), exact,
                   found, dropped)


def _relevance(n: int) -> np.ndarray:
    """MMR's relevance from the first stage's order: 1 for the best hit down to 0 for the last (linear).

    The order, not the raw scores: after a slot-preserving re-rank and a calibrated merge the scores of
    different spaces are only comparable through their order."""
    return np.linspace(1.0, 0.0, n) if n > 1 else np.ones(n)


def _vectors(index: Any, hits: Sequence[Hit]) -> np.ndarray:
    """Unit main-space vectors of the hits (zero rows where an item has none: other spaces, parents)."""
    dim = int(index.encoder.dim)
    if not hits:
        return np.zeros((0, dim))
    v = np.asarray(index.store.vectors(index.encoder.space, [h.id for h in hits]), dtype=np.float64)
    v = np.nan_to_num(v)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
