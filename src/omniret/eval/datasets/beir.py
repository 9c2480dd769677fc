"""BEIR (Thakur et al., NeurIPS 2021 Datasets & Benchmarks) text retrieval.

Layout of every BEIR dataset folder::

    corpus.jsonl    {"_id": "d1", "title": "…", "text": "…", "metadata": {…}}
    queries.jsonl   {"_id": "q1", "text": "…", "metadata": {…}}
    qrels/<split>.tsv   query-id<TAB>corpus-id<TAB>score   (with that header row)

Document text is ``(title + " " + text).strip()`` as in BEIR's dense-retrieval models
(``beir/retrieval/models/sentence_bert.py``); the title is kept in ``metadata["title"]``. Only the
queries judged in the split's qrels are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniret.errors import OmniretError
from omniret.eval.datasets.base import (
    EvalDataset,
    EvalDoc,
    EvalQuery,
    field_of,
    read_csv,
    read_jsonl,
    require_file,
)
from omniret.items import Modality

_HINT = "pass the BEIR dataset folder that holds corpus.jsonl, queries.jsonl and qrels/"


def _qrels(path: Path) -> dict[str, dict[str, float]]:
    rows = read_csv(path, ["query-id", "corpus-id", "score"], delimiter="\t")
    out: dict[str, dict[str, float]] = {}
    for n, row in enumerate(rows, 2):
        try:
            score = float(row["score"])
        except ValueError:
            raise OmniretError(f"{path}:{n}: score {row['score']!r} is not a number") from None
        out.setdefault(row["query-id"], {})[row["corpus-id"]] = score
    return out


def load(path: Path, *, split: str = "test", **_: Any) -> EvalDataset:
    """Load a BEIR dataset folder and the qrels of ``split``."""
    root = Path(path)
    qrels = _qrels(require_file(root / "qrels" / f"{split}.tsv", f"BEIR qrels for split {split!r}", _HINT))
    corpus_path = require_file(root / "corpus.jsonl", "BEIR corpus", _HINT)
    corpus: list[EvalDoc] = []
    for n, obj in read_jsonl(corpus_path):
        where = f"{corpus_path}:{n}"
        title = str(obj.get("title") or "")
        text = (title + " " + str(field_of(obj, ["text"], where))).strip()
        meta = {"title": title, **(obj.get("metadata") or {})}
        corpus.append(EvalDoc(str(field_of(obj, ["_id"], where)), text, Modality.TEXT, meta))
    query_path = require_file(root / "queries.jsonl", "BEIR queries", _HINT)
    queries: list[EvalQuery] = []
    for n, obj in read_jsonl(query_path):
        qid = str(field_of(obj, ["_id"], f"{query_path}:{n}"))
        if qid in qrels:
            queries.append(EvalQuery(qid, str(obj.get("text", "")), Modality.TEXT, obj.get("metadata") or {}))
    missing = set(qrels) - {q.id for q in queries}
    if missing:
        raise OmniretError(f"{query_path}: {len(missing)} judged queries are missing, e.g. {sorted(missing)[:3]}")
    return EvalDataset(f"beir-{root.name}-{split}", tuple(corpus), tuple(queries), qrels, "retrieval",
                       metadata={"format": "beir", "source": str(root), "split": split})
