"""Second-stage re-ranking of a search's top hits (``Index.search(..., rerank=...)``).

The first stage (ANN over stored vectors, plus the ranking stages) returns the top ``rerank_depth``
hits; a stronger, slower scorer re-scores those it can judge and they are re-ordered within the
positions they held (:func:`omniret.methods.rerank.slot_rerank`), then the list is cut to ``k``.
Re-rankers, by name (the registry of this module is :data:`RERANKERS`):

- ``cross`` / ``cross:<hub id or folder>``: a sentence-transformers ``CrossEncoder`` reads the query
  with each candidate's text — text chunks and PDF pages (their text layer or OCR text)
  (:mod:`omniret.encoders.cross`). Images, audio and video have no text of their own and keep their slots.
- ``maxsim``: late interaction over PDF pages: exact MaxSim (Khattab & Zaharia 2020) of the query's
  token matrix against each page's stored matrix in the index's page space (ColPali/ColQwen2,
  :mod:`omniret.spaces.pages`); needs an index with a ``page_model``.
- ``model:<registry name>``: another dual encoder (e.g. a CLIP-family model) embeds the query and the
  candidates afresh — images from their files, text items and pages from their text — and re-scores by
  cosine. This is how a cheap first stage (the ``offline`` model, a compressed index) is refined by
  the stronger model over a few dozen candidates instead of the whole collection. Candidate vectors are
  kept (:class:`CandidateCache`, per model, keyed by the file's size and modification time or the text
  itself), so the candidates that recur from query to query — the usual case in a session or a server —
  are embedded once.

Re-ranked hits keep the first stage's score of the slot they land in (so ``score`` still decreases
down the list) and carry ``metadata["rerank_score"]`` (the re-ranker's number) and
``metadata["first_rank"]`` (their 1-based first-stage rank). Re-ranking needs a text query.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from omniret.errors import OmniretError, QueryError
from omniret.items import Hit, Modality, Role
from omniret.methods.rerank import slot_rerank

#: re-ranker kinds → what they need
RERANKERS: dict[str, str] = {
    "none": "no second stage",
    "cross": "cross-encoder over text and page candidates: cross or cross:<hub id or folder>",
    "maxsim": "MaxSim of the page model's token matrices over PDF page candidates (index with a page model)",
    "model": "another dual encoder re-embeds candidates (images from files, text): model:<registry name>",
}
#: how many first-stage hits the re-ranker sees by default
DEFAULT_DEPTH = 50
#: candidate vectors a ``model:`` re-ranker keeps (about 20 MB at 512 dimensions)
CACHE_SIZE = 10_000

Scorer = Callable[[str, Sequence[Hit]], np.ndarray]


@dataclass(frozen=True)
class RerankSpec:
    """A parsed ``rerank=`` value: the kind and, for ``cross`` and ``model``, the model name."""

    kind: str = "none"
    model: str | None = None

    @property
    def active(self) -> bool:
        return self.kind != "none"


def parse_rerank(spec: str | None) -> RerankSpec:
    """``none`` | ``cross[:name]`` | ``maxsim`` | ``model:<registry name>`` → :class:`RerankSpec`."""
    if spec is None:
        return RerankSpec()
    if not isinstance(spec, str):
        raise QueryError(f"rerank must be a string, got {type(spec).__name__}")
    s = spec.strip()
    kind, _, rest = s.partition(":")
    kind = kind.lower()
    if kind in ("", "none") and not rest:
        return RerankSpec()
    if kind == "cross":
        return RerankSpec("cross", s if rest else "cross")
    if kind == "maxsim" and not rest:
        return RerankSpec("maxsim")
    if kind == "model" and rest.strip():
        return RerankSpec("model", rest.strip())
    hint = " (name the model: model:<registry name>, e.g. model:offline:multilingual)" if kind == "model" else ""
    raise QueryError(f"unknown rerank {spec!r}{hint}; choose from: none, cross, cross:<hub id or folder>, maxsim, "
                     "model:<registry name>")


class Rerankers:
    """The loaded re-ranking models of one index (each built once, on first use)."""

    def __init__(self, create_encoder: Callable[..., Any], create_cross: Callable[..., Any],
                 page_space: Any = None, **model_kwargs: Any) -> None:
        self._create_encoder, self._create_cross = create_encoder, create_cross
        self.page_space = page_space
        self._kwargs = model_kwargs
        self._models: dict[tuple[str, str], Any] = {}
        self._caches: dict[str, CandidateCache] = {}
        self._lock = threading.Lock()

    def _model(self, kind: str, name: str) -> Any:
        with self._lock:
            key = (kind, name)
            if key not in self._models:
                make = self._create_cross if kind == "cross" else self._create_encoder
                self._models[key] = make(name, **self._kwargs)
            return self._models[key]

    def scorer(self, spec: RerankSpec) -> Scorer:
        """The scoring function of ``spec``: ``(query, hits) -> (len(hits),)`` scores, NaN = not judged."""
        if spec.kind == "cross":
            model = self._model("cross", spec.model or "cross")
            return lambda q, hits: cross_scores(model, q, hits)
        if spec.kind == "maxsim":
            if self.page_space is None:
                raise QueryError("rerank='maxsim' re-scores PDF pages with the index's page model, and this index has "
                                 "none; create it with page_model='colpali:<hub id or folder>' or use rerank='cross'")
            space = self.page_space
            return lambda q, hits: maxsim_scores(space, q, hits)
        if spec.kind == "model":
            enc = self._model("model", spec.model or "")
            with self._lock:
                cache = self._caches.setdefault(spec.model or "", CandidateCache())
            return lambda q, hits: model_scores(enc, q, hits, cache)
        raise QueryError(f"rerank {spec.kind!r} has no scorer")


def _text_of(h: Hit) -> str | None:
    """The text a text re-ranker reads: a text chunk's or a page's own text (never a caption: the caption
    of an image may be exactly the query in evaluation sets)."""
    if h.modality in (Modality.TEXT, Modality.DOCUMENT) and isinstance(h.text, str) and h.text.strip():
        return h.text
    return None


def cross_scores(model: Any, query: str, hits: Sequence[Hit]) -> np.ndarray:
    """Cross-encoder scores of the hits that have text (NaN for the others)."""
    out = np.full(len(hits), np.nan)
    judged = [(i, t) for i, t in ((i, _text_of(h)) for i, h in enumerate(hits)) if t is not None]
    if judged:
        out[[i for i, _ in judged]] = model.score(query, [t for _, t in judged])
    return out


def maxsim_scores(page_space: Any, query: str, hits: Sequence[Hit]) -> np.ndarray:
    """Exact MaxSim of the query tokens against the stored token matrix of each hit that is an embedded page."""
    from omniret.methods.late_interaction import maxsim

    out = np.full(len(hits), np.nan)
    pages = [i for i, h in enumerate(hits) if h.id in page_space.mv]
    if pages:
        tokens = page_space.query_tokens(query)
        out[pages] = maxsim(tokens, [page_space.mv.tokens(hits[i].id) for i in pages])
    return out


def _load_image(h: Hit, size: int) -> Any | None:
    """The hit's image from its file, or None (a video frame, a missing or unreadable file)."""
    from omniret.query.args import load_query_image

    if h.modality is not Modality.IMAGE or h.span is not None or not h.uri:
        return None
    try:
        return load_query_image(h.uri, size)
    except OmniretError:
        return None


class CandidateCache:
    """A bounded, thread-safe LRU of candidate vectors for one re-ranking model. Keys name the content
    embedded — an image file's path, size and modification time; a hash of a text — so an edited file or
    text is embedded again, never served stale."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = int(size)
        self._vecs: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vecs)

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            vec = self._vecs.get(key)
            if vec is not None:
                self._vecs.move_to_end(key)
            return vec

    def put(self, key: Hashable, vec: np.ndarray) -> None:
        with self._lock:
            self._vecs[key] = vec
            self._vecs.move_to_end(key)
            while len(self._vecs) > self.size:
                self._vecs.popitem(last=False)


def _image_key(h: Hit) -> Hashable | None:
    """The cache key of an image hit's file (None when it cannot be read: the embed step skips it too)."""
    if h.modality is not Modality.IMAGE or h.span is not None or not h.uri:
        return None
    try:
        st = os.stat(h.uri)
    except (OSError, ValueError):
        return None
    return ("image", h.uri, st.st_size, st.st_mtime_ns)


def _text_key(text: str) -> Hashable:
    return ("text", hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())


def _cached(cache: CandidateCache | None, jobs: list[tuple[int, Hashable | None, Any]],
            embed: Callable[[list[Any]], np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """``(index, vector)`` for each ``(index, key, payload)`` job: from ``cache`` where it has the key,
    else embedded (one call for all the missing ones, payloads made lazily) and remembered."""
    found: list[tuple[int, np.ndarray]] = []
    missing: list[tuple[int, Hashable | None, Any]] = []
    for i, key, payload in jobs:
        vec = cache.get(key) if cache is not None and key is not None else None
        if vec is None:
            missing.append((i, key, payload))
        else:
            found.append((i, vec))
    made = [(i, key, payload()) if callable(payload) else (i, key, payload) for i, key, payload in missing]
    made = [m for m in made if m[2] is not None]
    if made:
        vecs = np.asarray(embed([p for _, _, p in made]), dtype=np.float32)
        for (i, key, _), vec in zip(made, vecs, strict=True):
            found.append((i, vec))
            if cache is not None and key is not None:
                cache.put(key, vec)
    return found


def model_scores(encoder: Any, query: str, hits: Sequence[Hit], cache: CandidateCache | None = None) -> np.ndarray:
    """Cosine of ``encoder``'s query embedding with its embedding of each image (from the file) and each
    text or page (from its text); NaN where the encoder cannot embed the candidate. With ``cache``,
    candidates embedded by an earlier query are not embedded again."""
    out = np.full(len(hits), np.nan)
    q = np.asarray(encoder.encode_text([query], role=Role.QUERY)[0], dtype=np.float64)
    if encoder.supports(Modality.IMAGE):
        jobs = [(i, _image_key(h), lambda h=h: _load_image(h, encoder.image_size))
                for i, h in enumerate(hits) if h.modality is Modality.IMAGE]
        for i, vec in _cached(cache, jobs, lambda ims: encoder.encode_images(ims, role=Role.DOCUMENT)):
            out[i] = float(vec @ q)
    texts = [(i, _text_key(t), t) for i, t in ((i, _text_of(h)) for i, h in enumerate(hits)) if t is not None]
    for i, vec in _cached(cache, texts, lambda ts: encoder.encode_text(ts, role=Role.DOCUMENT)):
        out[i] = float(vec @ q)
    return out


def rerank(hits: Sequence[Hit], query: str, scorer: Scorer) -> list[Hit]:
    """``hits`` re-ordered by ``scorer`` within the slots of the judged ones (see the module docstring)."""
    if not hits:
        return []
    scores = np.asarray(scorer(query, hits), dtype=np.float64)
    if scores.shape != (len(hits),):
        raise QueryError(f"the re-ranker returned {scores.shape} scores for {len(hits)} hits")
    order = slot_rerank(scores)
    out = []
    for slot, j in enumerate(order.tolist()):
        h = hits[j]
        meta = {**h.metadata, "first_rank": j + 1}
        if not np.isnan(scores[j]):
            meta["rerank_score"] = float(scores[j])
        out.append(replace(h, score=hits[slot].score, metadata=meta))
    return out
