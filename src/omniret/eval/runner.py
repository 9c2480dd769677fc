"""The evaluation runner: embed a judged set once, search it with every method, score the rankings.

Flow (``run_eval``):

1. **Index.** The corpus is embedded once into a fresh omniret index under
   ``<cache>/<dataset>-<model>-<digest>`` (the digest covers the document ids and contents), so a
   second run with the same dataset and model reuses it. Text documents are written to files first
   (the index only ingests files); items whose document carries a title get ``metadata["caption"]``
   (WeiMoCIR's captions, PDV's reference caption). Documents sharing one file collapse to the first
   id; their judgements are merged into it.
2. **Query split.** Queries are shuffled with ``seed``; the first ``bank_fraction`` become the query
   bank of QB-Norm/DBNorm/IS (``Index.set_query_bank``) and the rest are evaluated, for *every*
   method (raw included), so all rows share one test set and the bank never contains a test query.
3. **Search.** Each method is a set of ``Index.search`` keyword arguments (``hubness=``, ``gap=``,
   ``compose=``); nothing here re-implements ranking. Composed queries drop the reference image from
   its own ranking (the CIRR protocol).
4. **Score.** :func:`omniret.eval.metrics.evaluate_run` on the run ``{query: {doc: score}}``:
   R@1/5/10 (any positive), mAP@50 (INQUIRE and trec), nDCG@10, MRR, median rank (of the best
   relevant document; queries whose relevant documents all fall below ``depth`` count as rank
   ``depth + 1``, so the median is exact whenever it is at most ``depth``), and the hubness of the
   returned rankings: skewness of the k-occurrence distribution (Radovanović et al., JMLR 2010),
   ``N_k(d) = #{q : d in top-k(q)}``, ``S = E[(N_k − μ)^3] / σ^3`` over every corpus document.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import skew

from omniret.errors import OmniretError
from omniret.eval import baselines
from omniret.eval.datasets.base import EvalDataset, EvalDoc, EvalQuery
from omniret.eval.metrics import evaluate_run
from omniret.items import Modality
from omniret.media.structure import NAV_ROLES

#: method name → ``Index.search`` keyword arguments
METHODS: dict[str, dict[str, str]] = {
    "raw": {},
    "is": {"hubness": "is"},
    "qbnorm": {"hubness": "qbnorm"},
    "dbnorm": {"hubness": "dbnorm"},
    "dualdis": {"hubness": "dualdis"},
    "gap-center": {"gap": "center"},
    "gap-calibrate": {"gap": "calibrate"},
    "sum": {"compose": "sum"},
    "weimo": {"compose": "weimo"},
    "pdv": {"compose": "pdv"},
    "items": {"granularity": "item"},  # every matched item as found (blocks, sections, pages; navigation too)
    "items-nonav": {"granularity": "item", "nonav": "1"},  # ablation: as found, navigation items dropped
}
#: methods that are not omniret searches but reference rankings computed beside it (omniret.eval.baselines)
BASELINES = frozenset({"tfidf"})
DEFAULT_METHODS = ("raw", "is", "qbnorm", "dbnorm", "dualdis", "gap-center", "gap-calibrate")
COMPOSED_METHODS = ("sum", "weimo", "pdv")
PAGE_METHODS = ("raw", "tfidf")  # page-level judgements (heading → page): the default search and TF-IDF
KS = (1, 5, 10)
METRICS = ("recall@1", "recall@5", "recall@10", "map_inquire@50", "map@50", "ndcg@10", "mrr@50")
BANK_METHODS = frozenset({"is", "qbnorm", "dbnorm", "dualdis"})


@dataclass(frozen=True)
class EvalConfig:
    """Parameters of one evaluation run (all recorded in the report)."""

    model: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    depth: int = 100
    seed: int = 0
    bank_fraction: float = 0.5
    skew_k: int = 10
    cache_dir: str = ".omniret-eval"
    max_queries: int | None = None
    alpha: float | None = None
    beta: float | None = None
    #: an external query bank (e.g. the training split's captions, as QB-Norm uses); when given, no
    #: evaluated query goes to the bank and ``bank_fraction`` is ignored
    bank_texts: tuple[str, ...] | None = None
    #: a second stage (``Index.search(rerank=...)``); every method is then evaluated twice, as is and
    #: re-ranked (reported as ``<method>>rerank``), on the same test queries
    rerank: str | None = None
    rerank_depth: int | None = None

    def validate(self) -> None:
        unknown = [m for m in self.methods if _method_kwargs(m) is None]
        if unknown:
            raise OmniretError(f"unknown method(s) {unknown}; choose from {', '.join([*METHODS, *BASELINES])} "
                               "(combine a hubness and a compose method with '+', e.g. qbnorm+weimo)")
        if not 0.0 <= self.bank_fraction < 1.0:
            raise OmniretError(f"bank_fraction must be in [0, 1), got {self.bank_fraction}")
        if self.depth < 50:
            raise OmniretError(f"depth must be at least 50 (mAP@50 needs 50 ranks), got {self.depth}")
        if self.rerank is not None:
            from omniret.query.rerank import parse_rerank

            parse_rerank(self.rerank)


@dataclass
class MethodResult:
    """Metrics of one method, its per-query run and the k-occurrence counts of its rankings."""

    method: str
    metrics: dict[str, float]
    run: dict[str, dict[str, float]]
    k_occurrence: list[int]
    seconds: float


@dataclass
class EvalResult:
    """Everything a report needs."""

    dataset: str
    task: str
    config: EvalConfig
    n_corpus: int
    test_queries: list[str]
    bank_queries: list[str]
    qrels: dict[str, dict[str, float]]
    methods: list[MethodResult] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _method_kwargs(name: str) -> dict[str, str] | None:
    if name.strip().lower() in BASELINES:
        return {}
    out: dict[str, str] = {}
    for part in name.split("+"):
        kw = METHODS.get(part.strip().lower())
        if kw is None:
            return None
        out.update(kw)
    return out


def parse_methods(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"raw,qbnorm"`` → ``("raw", "qbnorm")``; unknown names raise an error listing the choices."""
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    if not names:
        raise OmniretError(f"give at least one method; choose from {', '.join(METHODS)}")
    bad = [m for m in names if _method_kwargs(m) is None]
    if bad:
        raise OmniretError(f"unknown method(s) {bad}; choose from {', '.join([*METHODS, *BASELINES])}")
    return tuple(dict.fromkeys(names))


# -- corpus → index ------------------------------------------------------------------------------
def _canonical(dataset: EvalDataset) -> tuple[dict[str, str], dict[str, str]]:
    """(doc id → canonical doc id, canonical doc id → file path): documents sharing a file collapse."""
    canon: dict[str, str] = {}
    path_of: dict[str, str] = {}
    first: dict[str, str] = {}
    for d in dataset.corpus:
        if d.modality is Modality.TEXT:
            continue
        real = os.path.realpath(d.content)
        keep = first.setdefault(real, d.id)
        canon[d.id] = keep
        path_of[keep] = real
    return canon, path_of


def _digest(dataset: EvalDataset, model: str) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(model.encode())
    for d in sorted(dataset.corpus, key=lambda d: d.id):
        h.update(f"\x00{d.id}\x01{d.content}\x02{d.metadata.get('title', '')}".encode())
    return h.hexdigest()


def _write_texts(docs: Sequence[EvalDoc], folder: Path) -> dict[str, str]:
    """Write text documents to ``folder/<n>.txt``; returns doc id → real path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, d in enumerate(docs):
        p = folder / f"{n:07d}.txt"
        p.write_text(d.content, encoding="utf-8")
        out[d.id] = os.path.realpath(p)
    return out


def _set_captions(index: Any, captions: dict[str, str]) -> None:
    """Re-commit image items with ``metadata["caption"]`` (their vectors unchanged)."""
    from omniret.items import make_id
    from omniret.store.base import WriteBatch

    space = index.encoder.space
    by_id = {make_id(uri): cap for uri, cap in captions.items()}
    ids = list(by_id)
    for i in range(0, len(ids), 512):
        chunk = [it for it in index.store.get(ids[i : i + 512]) if it is not None]
        if not chunk:
            continue
        vecs = index.store.vectors(space, [it.id for it in chunk])
        new = [type(it)(**{**{f: getattr(it, f) for f in it.__dataclass_fields__},
                           "metadata": {**it.metadata, "caption": by_id[it.id]}}) for it in chunk]
        batch = WriteBatch()
        batch.add(new, {space: vecs})
        index.store.commit(batch)


def build_index(dataset: EvalDataset, model: str, cache_dir: str | Path,
                progress: Callable[[int, int], None] | None = None) -> tuple[Any, dict[str, str], bool]:
    """Open (or build) the cached index of ``dataset`` under ``cache_dir``.

    Returns ``(index, uri → canonical doc id, reused)``.
    """
    from omniret.index import Index

    folder = Path(cache_dir) / f"{_safe(model)}-{_digest(dataset, model)}"  # same corpus → same index
    canon, path_of = _canonical(dataset)
    texts = [d for d in dataset.corpus if d.modality is Modality.TEXT]
    text_paths = _write_texts(texts, folder / "texts") if texts else {}
    uri_to_doc = {p: d for d, p in path_of.items()} | {p: d for d, p in text_paths.items()}
    done = folder / "complete.json"
    reused = done.is_file()
    index = Index.open(str(folder / "index"), model=model)
    if not reused:
        report = index.add(sorted(uri_to_doc), workers=0, progress=progress)
        titles = {path_of[canon[d.id]]: str(d.metadata["title"]) for d in dataset.corpus
                  if d.id in canon and d.metadata.get("title")}
        _set_captions(index, titles)
        done.write_text(json.dumps({"added": report.to_dict()}, default=str), encoding="utf-8")
    return index, uri_to_doc, reused


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)[:40]


# -- queries -------------------------------------------------------------------------------------
def split_queries(query_ids: Sequence[str], bank_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """``(bank, test)``: a seeded shuffle, the first ``round(bank_fraction · n)`` go to the bank."""
    order = [query_ids[i] for i in np.random.default_rng(seed).permutation(len(query_ids))]
    n_bank = int(round(bank_fraction * len(order)))
    return sorted(order[:n_bank]), sorted(order[n_bank:])


def _search_one(index: Any, q: EvalQuery, kwargs: dict[str, Any], depth: int) -> list[Any]:
    if "reference" in q.extra:
        return index.search(q.content, image=q.extra["reference"], k=depth + 1, **kwargs)
    if q.modality is Modality.TEXT:
        return index.search(q.content, k=depth, **kwargs)
    if q.modality is Modality.IMAGE:
        return index.search(image=q.content, k=depth, **kwargs)
    raise OmniretError(f"query {q.id!r}: {q.modality.value} queries are not supported by the runner yet")


def hit_doc(h: Any, uri_to_doc: dict[str, str], pages: bool) -> str | None:
    """The judged id a hit stands for: its document's id (unjudged files: their real path), or with
    ``pages`` the page it is on, ``"<doc id>#p<page>"`` (a hit on a whole document keeps the doc id)."""
    real = os.path.realpath(h.uri) if h.uri else None
    if real is None:
        return None
    doc = uri_to_doc.get(real, real)
    page = h.metadata.get("page") if pages else None
    return f"{doc}#p{int(page)}" if page is not None else doc


RERANKED = ">rerank"


def run_method(index: Any, queries: Sequence[EvalQuery], uri_to_doc: dict[str, str], method: str,
               config: EvalConfig, rollup: bool, pages: bool = False) -> dict[str, dict[str, float]]:
    """The run ``{query id: {doc id: score}}`` of ``method`` over ``queries`` (through ``Index.search``);
    with ``pages``, ids are pages (:func:`hit_doc`) and the search runs with its default granularity;
    ``<method>>rerank`` adds ``config.rerank`` as the second stage."""
    reranked = method.endswith(RERANKED)
    method = method.removesuffix(RERANKED)
    kwargs: dict[str, Any] = dict(_method_kwargs(method) or {})
    nonav = kwargs.pop("nonav", None) is not None
    if reranked:
        kwargs["rerank"] = config.rerank
        kwargs["rerank_depth"] = config.rerank_depth if config.rerank_depth is not None else config.depth
    if config.alpha is not None:
        kwargs["alpha"] = config.alpha
    if config.beta is not None:
        kwargs["beta"] = config.beta
    if rollup:
        kwargs["rollup"] = True
    run: dict[str, dict[str, float]] = {}
    for q in queries:
        hits = _search_one(index, q, kwargs, config.depth)
        ref = os.path.realpath(q.extra["reference"]) if "reference" in q.extra else None
        ranked: dict[str, float] = {}
        for h in hits:
            if nonav and h.metadata.get("role") in NAV_ROLES:
                continue
            doc = hit_doc(h, uri_to_doc, pages)  # unjudged files still take ranks
            if doc is None or doc in ranked or (ref is not None and os.path.realpath(h.uri) == ref):
                continue
            ranked[doc] = float(h.score)
        run[q.id] = dict(list(ranked.items())[: config.depth])
    return run


# -- scores --------------------------------------------------------------------------------------
def k_occurrence(run: dict[str, dict[str, float]], doc_ids: Sequence[str], k: int) -> np.ndarray:
    """``N_k(d)``: how many queries rank document ``d`` in their top ``k`` (order of ``doc_ids``)."""
    pos = {d: i for i, d in enumerate(doc_ids)}
    counts = np.zeros(len(doc_ids), dtype=np.int64)
    for docs in run.values():
        top = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        for d, _ in top:
            counts[pos[d]] += 1
    return counts


def skewness(counts: np.ndarray) -> float:
    """Population skewness of the k-occurrence counts (0 when all equal), as ``skewness_k_occurrence``."""
    c = np.asarray(counts, dtype=np.float64)
    if c.size == 0 or np.all(c == c[0]):
        return 0.0
    return float(skew(c, bias=True))


def median_rank_capped(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, float]], depth: int) -> float:
    """1-based rank of each query's best relevant document (``depth + 1`` if none ranked), median over queries."""
    ranks = []
    for qid, docs in run.items():
        order = [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))]
        rel = qrels.get(qid, {})
        ranks.append(next((i + 1 for i, d in enumerate(order) if rel.get(d, 0) > 0), depth + 1))
    return float(np.median(ranks)) if ranks else float("nan")


def score_run(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, float]], doc_ids: Sequence[str],
              depth: int, skew_k: int) -> tuple[dict[str, float], np.ndarray]:
    """The report's metrics of one run, and its k-occurrence counts."""
    judged = {q: qrels.get(q, {}) for q in run}
    metrics = evaluate_run(run, judged, list(METRICS))
    metrics["median_rank"] = median_rank_capped(run, judged, depth)
    counts = k_occurrence(run, doc_ids, skew_k)
    metrics[f"skewness@{skew_k}"] = skewness(counts)
    return metrics, counts


def _canonical_qrels(dataset: EvalDataset, canon: dict[str, str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for q, docs in dataset.qrels.items():
        merged: dict[str, float] = {}
        for d, r in docs.items():
            c = canon.get(d, d)
            merged[c] = max(merged.get(c, 0.0), float(r))
        out[q] = merged
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("omniret", "numpy", "torch", "faiss-cpu", "open_clip_torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def run_eval(dataset: EvalDataset, config: EvalConfig, log: Callable[[str], None] | None = None) -> EvalResult:
    """Embed ``dataset`` once (cached), evaluate every method of ``config``; see the module docstring."""
    config.validate()
    say = log or (lambda _m: None)
    t0 = time.time()
    index, uri_to_doc, reused = build_index(dataset, config.model, config.cache_dir)
    say(f"index {'reused' if reused else 'built'} in {time.time() - t0:.1f}s ({len(uri_to_doc)} documents)")
    try:
        return _evaluate(index, dataset, config, uri_to_doc, say, t0, reused)
    finally:
        index.close()


def _evaluate(index: Any, dataset: EvalDataset, config: EvalConfig, uri_to_doc: dict[str, str],
              say: Callable[[str], None], t0: float, reused: bool) -> EvalResult:
    canon, _ = _canonical(dataset)
    qrels = _canonical_qrels(dataset, canon)
    judged = [q.id for q in dataset.queries if any(r > 0 for r in qrels.get(q.id, {}).values())]
    bank_ids, test_ids = split_queries(judged, 0.0 if config.bank_texts else config.bank_fraction, config.seed)
    if config.max_queries is not None:
        test_ids = test_ids[: config.max_queries]
    if not test_ids:
        raise OmniretError(f"dataset {dataset.name!r}: no judged query is left to evaluate; lower bank_fraction")
    by_id = {q.id: q for q in dataset.queries}
    bank_texts = list(config.bank_texts) if config.bank_texts else \
        [by_id[q].content for q in bank_ids if by_id[q].modality is Modality.TEXT]
    if any(m.split("+")[0] in BANK_METHODS for m in config.methods):
        if not bank_texts:
            raise OmniretError("hubness methods need a query bank: give text queries and bank_fraction > 0")
        index.set_query_bank(bank_texts, limit=max(len(bank_texts), 1))
    known = {os.path.realpath(u) for u in index.store.source_states()}
    doc_ids = sorted(set(uri_to_doc.values()) | {uri_to_doc.get(u, u) for u in known})
    pages = dataset.page_level
    page_texts = baselines.page_texts(dataset) if pages else {}
    if pages:  # every page of every judged document is a rankable unit (and a document hit stays one)
        doc_ids = sorted(set(doc_ids) | set(page_texts))
    rollup = not pages and any(d.modality in (Modality.TEXT, Modality.DOCUMENT) for d in dataset.corpus)
    result = EvalResult(dataset.name, dataset.task, config, len(doc_ids), test_ids, bank_ids, qrels)
    queries = [by_id[q] for q in test_ids]
    methods = [m for base in config.methods for m in ((base, base + RERANKED) if config.rerank else (base,))]
    for method in methods:
        t = time.time()
        if method == "tfidf":
            run = baselines.tfidf_run(page_texts or baselines.doc_texts(dataset), queries, config.depth)
        else:
            run = run_method(index, queries, uri_to_doc, method, config, rollup, pages)
        metrics, counts = score_run(run, qrels, doc_ids, config.depth, config.skew_k)
        result.methods.append(MethodResult(method, metrics, run, counts.tolist(), time.time() - t))
        say(f"{method:>14}: " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    result.info = {"versions": _versions(), "index_reused": reused, "wall_seconds": time.time() - t0,
                   "machine": f"{platform.machine()} {os.cpu_count()} cpu", "index": index.path,
                   "bank_size": len(bank_texts)}
    return result


def run_on_index(dataset: EvalDataset, index_path: str | Path, config: EvalConfig,
                 log: Callable[[str], None] | None = None) -> EvalResult:
    """Evaluate an existing index on ``dataset``'s judged queries (``omniret eval run q.jsonl --index``).

    Judged documents are matched to indexed files by real path; every other indexed file counts as a
    non-relevant document. The index's model is used (``config.model`` is only recorded).
    """
    from omniret.index import Index, ensure_index_exists

    config.validate()
    ensure_index_exists(str(index_path))
    t0 = time.time()
    index = Index.open(str(index_path), model="auto")
    try:
        _, path_of = _canonical(dataset)
        uri_to_doc = {p: d for d, p in path_of.items()}
        cfg = EvalConfig(**{**config.__dict__, "model": index.encoder.name})
        return _evaluate(index, dataset, cfg, uri_to_doc, log or (lambda _m: None), t0, True)
    finally:
        index.close()
