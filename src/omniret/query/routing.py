"""Routing a query across vector spaces, modalities and granularities (UniversalRAG, training-free).

UniversalRAG (Yeo et al. 2025, arXiv 2504.20734) keeps one corpus per modality/granularity and
routes each query to the right one. An omniret index holds every modality in one store but up to
two vector spaces: the main space (images, text, video frames, document pages) and the audio
space (CLAP: audio windows, video soundtracks, and CLAP's text tower for text queries). Routing
here decides which spaces and modalities a query searches, and merges the runs:

- ``route="auto"``: every space the query can enter (text → main + audio when the audio model
  embeds text; image → main; audio → audio). With one space the main pipeline's own ``gap``
  option applies unchanged. With more than one space, each space's candidates are taken per
  modality and T-norm calibrated per (space, modality) — ``s' = (s − q·μ_m) / sqrt(qᵀ Σ_m q)``
  with μ_m, Σ_m the moments of modality ``m`` *in that space* (:func:`omniret.methods.gap.tnorm_scores`)
  — so scores from different spaces and modalities are on one scale and interleave fairly; an
  item found in both spaces (a video: frames and soundtrack) keeps its best calibrated score.
- ``route="all"``: the same spaces, always calibrated, every modality present in a space
  contributing its own candidates (even with a single space).
- ``route=<modality>``: only that modality's items, in every space the query can enter.
- ``route="llm"``: an OpenAI-compatible chat endpoint classifies the query into UniversalRAG's
  classes (no / paragraph / document / image / clip / video, plus audio) with a one-token
  answer, up to 3 tries; the class maps to a modality and a granularity; anything else → ``auto``.

The functions here work on arrays and plain values; IO (store, encoders, HTTP) stays in the caller
(:class:`omniret.index.Index`), except :func:`llm_route`, which takes the HTTP client as an argument.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniret.errors import QueryError
from omniret.items import Modality
from omniret.query.names import GRANULARITIES, ROUTES

log = logging.getLogger(__name__)

#: environment variables of the optional LLM router
ROUTER_URL_ENV, ROUTER_MODEL_ENV, ROUTER_KEY_ENV = "OMNIRET_ROUTER_URL", "OMNIRET_ROUTER_MODEL", "OMNIRET_ROUTER_KEY"
ROUTER_RETRIES = 3

#: UniversalRAG's classes (and audio, which omniret indexes too) → (modality or None = every, granularity)
LLM_CLASSES: dict[str, tuple[Modality | None, str]] = {
    "no": (None, "item"),
    "paragraph": (Modality.TEXT, "item"),
    "document": (Modality.DOCUMENT, "root"),
    "image": (Modality.IMAGE, "item"),
    "clip": (Modality.VIDEO, "item"),
    "video": (Modality.VIDEO, "root"),
    "audio": (Modality.AUDIO, "item"),
}

ROUTER_PROMPT = """Decide which kind of stored content best answers the user's query.
Answer with exactly one word from this list:
- no: the query needs no lookup at all (greetings, arithmetic, general chat)
- paragraph: a short passage of text answers it (a fact, a definition, a quote)
- document: it needs a whole document or several pages (a report, a manual, a book chapter)
- image: it asks what something looks like (a photo, a picture, a diagram)
- clip: it asks about a short moment of a video (an action, a scene, a step being shown)
- video: it is about a whole video (its story, its overall topic)
- audio: it is about a sound or a recording (a noise, an animal call, music, speech)

Examples:
Query: hello, how are you? -> no
Query: what is 12 times 7? -> no
Query: when was the Eiffel tower finished? -> paragraph
Query: definition of photosynthesis -> paragraph
Query: summarise the 2023 annual report -> document
Query: which chapter of the manual explains installation? -> document
Query: a red bicycle leaning on a wall -> image
Query: what does a snow leopard look like? -> image
Query: the moment the goalkeeper saves the penalty -> clip
Query: how to crack an egg, the step with the bowl -> clip
Query: what is the documentary about volcanoes about? -> video
Query: a full cooking show episode about pasta -> video
Query: a dog barking -> audio
Query: the recording of the meeting where budgets were discussed -> audio

Query: {query} ->"""


@dataclass(frozen=True)
class Route:
    """A resolved route: which modalities (None = all), whether to calibrate, and a granularity hint."""

    modalities: frozenset[Modality] | None = None
    force_all: bool = False
    granularity: str | None = None  # set by the LLM router; None keeps the caller's choice
    source: str = "auto"


def parse_route(route: str | Modality) -> Route:
    """``auto`` | ``all`` | ``llm`` | a modality name → :class:`Route` (``llm`` is resolved later)."""
    if isinstance(route, Modality):
        return Route(frozenset({route}), source=route.value)
    if not isinstance(route, str):
        raise QueryError(f"route must be a string, got {type(route).__name__}")
    r = route.strip().lower()
    if r in ("auto", "llm"):
        return Route(source=r)
    if r == "all":
        return Route(force_all=True, source="all")
    try:
        return Route(frozenset({Modality.parse(r)}), source=r)
    except Exception as e:
        choices = ", ".join(list(ROUTES) + [m.value for m in Modality])
        raise QueryError(f"unknown route {route!r}; choose from {choices}") from e


def parse_granularity(granularity: str | None, rollup: bool) -> str:
    """``auto`` (the default) | ``item`` | ``parent`` | ``root``; ``rollup=True`` is the old spelling of ``parent``."""
    if granularity is None:
        return "parent" if rollup else "auto"
    g = str(granularity).strip().lower()
    if g not in GRANULARITIES:
        raise QueryError(f"unknown granularity {granularity!r}; choose from {', '.join(GRANULARITIES)}")
    if rollup and g == "item":
        raise QueryError("rollup=True contradicts granularity='item'; pass only granularity=")
    return g


def needs_calibration(route: Route, n_spaces: int) -> bool:
    """The merge rule: calibrate when more than one space contributes, or always under ``all``."""
    return route.force_all or n_spaces > 1


def merge(runs: Sequence[tuple[Sequence[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """Merge (already comparable) scored id lists into one ranking: ``score(d) = max_r score_r(d)``.

    Ties break by id so the order is deterministic. Non-finite scores sort last.
    """
    best: dict[str, float] = {}
    for ids, scores in runs:
        for i, s in zip(ids, np.asarray(scores, dtype=np.float64).tolist(), strict=True):
            s = s if np.isfinite(s) else -np.inf
            if i not in best or s > best[i]:
                best[i] = s
    keys = sorted(best, key=lambda i: (-best[i], i))
    return keys, np.array([best[i] for i in keys], dtype=np.float64)


# -- optional LLM router ------------------------------------------------------------------------
def parse_answer(text: str) -> str | None:
    """The class an LLM answered (lower-cased, first word; a unique prefix of a class counts), else None."""
    words = re.findall(r"[a-z]+", (text or "").lower())
    if not words:
        return None
    w = words[0]
    if w in LLM_CLASSES:
        return w
    found = [c for c in LLM_CLASSES if c.startswith(w)]
    return found[0] if len(found) == 1 else None


def router_config(url: str | None = None, model: str | None = None, api_key: str | None = None
                  ) -> tuple[str, str, str | None]:
    """The router's endpoint, model and key: arguments, else ``$OMNIRET_ROUTER_URL/_MODEL/_KEY``."""
    url = url or os.environ.get(ROUTER_URL_ENV)
    if not url:
        raise QueryError(f"route='llm' needs an OpenAI-compatible endpoint: set {ROUTER_URL_ENV} "
                         "(e.g. http://127.0.0.1:8000/v1) or pass router_url=")
    return url.rstrip("/"), model or os.environ.get(ROUTER_MODEL_ENV) or "gpt-4o-mini", \
        api_key or os.environ.get(ROUTER_KEY_ENV)


def llm_route(query: str, url: str, model: str, client: Any, *, api_key: str | None = None,
              retries: int = ROUTER_RETRIES, timeout: float = 10.0) -> str | None:
    """Ask an OpenAI-compatible ``/chat/completions`` endpoint for the query's class.

    One short answer (``max_tokens=1``, temperature 0), up to ``retries`` tries on HTTP errors,
    malformed replies or answers outside :data:`LLM_CLASSES`; ``None`` when every try failed
    (the caller falls back to ``auto``). ``client`` is an ``httpx.Client``.
    """
    endpoint = url if url.endswith("/chat/completions") else f"{url}/chat/completions"
    body = {"model": model, "max_tokens": 1, "temperature": 0,
            "messages": [{"role": "user", "content": ROUTER_PROMPT.format(query=query)}]}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    for attempt in range(1, retries + 1):
        try:
            r = client.post(endpoint, json=body, headers=headers, timeout=timeout)
            r.raise_for_status()
            answer = r.json()["choices"][0]["message"]["content"]
        except Exception as e:  # network, HTTP status, JSON shape: try again
            log.info("router: try %d/%d failed: %s", attempt, retries, e)
            continue
        label = parse_answer(str(answer))
        if label is not None:
            return label
        log.info("router: try %d/%d answered %r, not a class", attempt, retries, answer)
    return None


def route_from_label(label: str | None) -> Route:
    """An LLM class → :class:`Route` (``no`` and failures → ``auto``, searching everything)."""
    if label is None or label == "no" or label not in LLM_CLASSES:
        return Route(source=f"llm:{label or 'fallback'}")
    mod, gran = LLM_CLASSES[label]
    return Route(frozenset({mod}) if mod is not None else None, granularity=gran, source=f"llm:{label}")
