"""Reference rankings computed beside omniret on the same units: TF-IDF (scikit-learn).

``tfidf``: scikit-learn's ``TfidfVectorizer`` (its defaults: lower-cased word unigrams, smooth idf,
L2-normalised rows) fitted on the units being ranked — every page of the judged PDFs (their text
layer, read the way omniret reads it) or every text document — and cosine similarity to the query.
A lexical yardstick for the dense model on heading → page judgements (issue 15 quotes TF-IDF R@1
0.63 where the dense model had 0.48).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniret.eval.datasets.base import EvalDataset, EvalQuery
from omniret.items import Modality


def page_texts(dataset: EvalDataset) -> dict[str, str]:
    """``{"<doc id>#p<page>": text}`` for every page of the dataset's PDF documents (text layer, no OCR)."""
    from omniret.media.pdf import PdfOptions, iter_pages

    out: dict[str, str] = {}
    opts = PdfOptions(ocr=False, blocks=False, render="never")
    for d in dataset.corpus:
        if d.modality is Modality.DOCUMENT:
            for page in iter_pages(d.content, opts):
                out[f"{d.id}#p{page.number}"] = page.text
    return out


def doc_texts(dataset: EvalDataset) -> dict[str, str]:
    """``{doc id: text}`` of the dataset's text documents."""
    return {d.id: d.content for d in dataset.corpus if d.modality is Modality.TEXT}


def tfidf_run(units: dict[str, str], queries: Sequence[EvalQuery], depth: int) -> dict[str, dict[str, float]]:
    """The TF-IDF run ``{query id: {unit id: cosine}}`` (top ``depth`` units with a non-zero score)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = list(units)
    text_queries = [q for q in queries if q.modality is Modality.TEXT]
    if not ids or not text_queries:
        return {q.id: {} for q in queries}
    vec = TfidfVectorizer()
    mat = vec.fit_transform([units[i] for i in ids])
    sims = (vec.transform([q.content for q in text_queries]) @ mat.T).toarray()
    run: dict[str, dict[str, float]] = {q.id: {} for q in queries}
    for q, row in zip(text_queries, sims, strict=True):
        top = np.argsort(-row, kind="stable")[:depth]
        run[q.id] = {ids[i]: float(row[i]) for i in top if row[i] > 0}
    return run
