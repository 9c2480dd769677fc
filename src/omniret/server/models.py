"""Pydantic request and response models: the HTTP edge's only schema (the library uses dataclasses).

Search and classify requests carry the optional method options of :meth:`omniret.Index.search`
and :meth:`omniret.Index.classify`; only the fields a client sets are passed on, so a request that
uses none of them works with any library version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from omniret.items import Hit, Item, display_label, displayable, is_utf8

Scalar = str | int | float | bool | None


def _not_bool(value: Any) -> Any:
    """JSON ``true`` is not the number 1 (pydantic's lax mode would take it as one)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


#: an int / float field that refuses booleans but still takes form strings ("10")
Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]

#: request fields that are :meth:`Index.search` keyword arguments under the same name
SEARCH_OPTIONS = ("modality", "where", "path_glob", "mtime_min", "mtime_max", "rollup", "granularity", "hubness", "gap",
                  "compose", "alpha", "beta", "hybrid", "like", "negative", "candidates", "rerank", "rerank_depth")
#: the re-rankers the HTTP API offers: fixed choices, so a request never names a model or folder to load
HTTP_RERANKERS = Literal["none", "cross", "maxsim"]
Modalities = list[Literal["text", "image", "audio", "video", "document"]]


class SearchRequest(BaseModel):
    """A search: text, and/or ``like`` (item ids), plus filters and method options.

    In ``multipart/form-data`` the same fields are form fields, plus ``file`` (an image or a sound).
    """

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=10_000, description="query text (with an upload: the edit)")
    k: Int = Field(10, ge=1, le=1000, description="number of hits")
    modality: list[Literal["text", "image", "audio", "video", "document"]] | None = Field(
        None, description="only these modalities")
    path_glob: str | None = Field(None, max_length=1000, description="only items whose path matches")
    where: dict[str, Scalar] | None = Field(None, description="metadata equality filters")
    mtime_min: Float | None = None
    mtime_max: Float | None = None
    rollup: bool | None = Field(None, description="return files instead of chunks/segments")
    granularity: Literal["item", "parent", "root"] | None = Field(
        None, description="item: the matches; parent: files and pages; root: whole documents")
    hubness: Literal["none", "is", "qbnorm", "dbnorm", "dualdis"] | None = None
    gap: Literal["none", "center", "calibrate"] | None = None
    compose: Literal["sum", "weimo", "pdv"] | None = Field(None, description="image+text composition")
    alpha: Float | None = Field(None, ge=-100, le=100)
    beta: Float | None = Field(None, ge=-100, le=100)
    hybrid: Literal["none", "rrf", "minmax", "zscore"] | None = Field(None, description="fuse with BM25")
    negative: str | list[str] | None = Field(None, description="text(s) to steer away from")
    candidates: Int | None = Field(None, ge=1, le=100_000, description="ANN candidates re-ranked by the stages")
    like: list[str] | None = Field(None, min_length=1, max_length=100, description="more like these item ids")
    rerank: HTTP_RERANKERS | None = Field(None, description="second stage: cross-encoder (text, pages) or page MaxSim")
    rerank_depth: Int | None = Field(None, ge=1, le=1000, description="hits the re-ranker sees")

    def options(self) -> dict[str, Any]:
        """The keyword arguments for ``Index.search``: only what the client set."""
        return {name: getattr(self, name) for name in SEARCH_OPTIONS
                if name in self.model_fields_set and getattr(self, name) is not None}


class HitOut(BaseModel):
    id: str
    score: float
    modality: str
    uri: str = Field(description="the file's path relative to the server's root folder (never an absolute server path)")
    name: str
    label: str = Field("", description="how the hit reads: a page or a segment (book.pdf p. 2, talk.mp4 @ 01:23–01:33), "
                                       "a document's title and page count, else the file name")
    parent_id: str | None = None
    span: list[float] | None = None
    text: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    media_url: str
    thumb_url: str | None = None

    @classmethod
    def of(cls, hit: Hit | Item, score: float | None = None, *, uri: str | None = None) -> HitOut:
        """The response form of a hit; ``uri`` replaces the server path (see ``Service.public_uri``)."""
        import os

        mod = hit.modality.value
        has_picture = mod in ("image", "document", "video")
        # a non-UTF-8 file name is shown with U+FFFD (a response must be valid UTF-8); the file itself is
        # served by id (media_url)
        return cls(id=hit.id, score=float(getattr(hit, "score", score or 0.0)), modality=mod,
                   uri=displayable(os.path.basename(hit.uri) if uri is None else uri),
                   name=displayable(os.path.basename(hit.uri)), parent_id=hit.parent_id,
                   label=displayable(display_label(hit.modality, hit.uri, hit.parent_id, hit.text, hit.metadata)),
                   span=list(hit.span) if hit.span is not None else None, text=hit.text,
                   metadata=_jsonable(hit.metadata), media_url=f"/media/{hit.id}",
                   thumb_url=f"/thumbs/{hit.id}" if has_picture else None)


class SearchResponse(BaseModel):
    hits: list[HitOut]
    took_ms: float


class ItemOut(HitOut):
    content_hash: str | None = None
    mtime: float | None = None


class ContextRequest(BaseModel):
    """Evidence for a generator (``Index.context``), and for ``POST /ask`` the generated answer."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(..., min_length=1, max_length=10_000)
    budget_tokens: Int = Field(2000, ge=1, le=200_000, description="token budget of the evidence")
    modality: Modalities | None = Field(None, description="only these modalities")
    route: Literal["all", "auto", "llm", "text", "image", "audio", "video", "document"] = "all"
    rerank: HTTP_RERANKERS | None = None
    candidates: Int = Field(40, ge=1, le=1000, description="first-stage hits considered")

    def options(self) -> dict[str, Any]:
        return {"budget_tokens": self.budget_tokens, "modalities": self.modality, "route": self.route,
                "rerank": self.rerank, "candidates": self.candidates}


class ClassifyRequest(BaseModel):
    """Zero-shot classification of indexed items against a label set."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(..., min_length=1, max_length=10_000)
    where: dict[str, Scalar] | None = None
    ids: list[str] | None = Field(None, min_length=1, max_length=10_000)
    k: Int = Field(1, ge=1, le=100)
    threshold: Float | None = Field(None, ge=-1.0, le=1.0)
    templates: str | list[str] | None = None
    descriptions: dict[str, list[str]] | str | None = Field(
        None, description='label -> sentences, or the name of a shipped set ("sounds": ReCLAP-style sound descriptions)')
    write: bool = Field(False, description="store the labels in item metadata (needs the token)")

    def options(self) -> dict[str, Any]:
        names = ("where", "ids", "k", "threshold", "templates", "descriptions", "write")
        return {n: getattr(self, n) for n in names if n in self.model_fields_set and getattr(self, n) is not None}


class ClassifyResponse(BaseModel):
    results: list[dict[str, Any]]


class AddPathsRequest(BaseModel):
    """Add server-side files or folders (each under one of the server's ``--root`` folders)."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(..., min_length=1, max_length=1000)
    prune: bool = False


class AddResponse(BaseModel):
    new: int
    changed: int
    unchanged: int
    removed: int
    items: int
    failed: list[dict[str, str]]
    ids: list[str] = Field(default_factory=list, description="ids of the uploaded files' items")
    seconds: float


class DeleteResponse(BaseModel):
    removed: int


class ModelOut(BaseModel):
    prefix: str
    example: str
    description: str


class ModelsResponse(BaseModel):
    models: list[ModelOut]
    current: str


class Health(BaseModel):
    status: Literal["ok"]
    items: int
    model: str
    writes_enabled: bool


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        text = json.dumps(meta, ensure_ascii=False)
        if is_utf8(text):
            return meta
    except (TypeError, ValueError):
        text = json.dumps(meta, ensure_ascii=False, default=str)
    return dict(json.loads(displayable(text)))
