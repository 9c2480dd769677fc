"""A LlamaIndex retriever over an omniret index (``pip install 'omniret[llamaindex]'``).

    from omniret.adapters.llamaindex import OmniretLlamaRetriever
    retriever = OmniretLlamaRetriever.from_path(".omniret", k=5)
    nodes = retriever.retrieve("a red bicycle")

Every hit becomes a ``NodeWithScore``: an ``ImageNode`` (with ``image_path``) for a picture stored on
this machine, else a ``TextNode``; text, metadata and pointers as in :mod:`omniret.adapters.common`.
"""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode

from omniret.adapters.common import hit_metadata, hit_text, local_path
from omniret.index import Index
from omniret.items import Hit, Modality


class OmniretLlamaRetriever(BaseRetriever):
    """LlamaIndex ``BaseRetriever`` over :meth:`omniret.Index.search`; ``search_kwargs`` are its keywords."""

    def __init__(self, index: Index, k: int = 4, search_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.k = k
        self.search_kwargs = dict(search_kwargs or {})

    @classmethod
    def from_path(cls, path: str = ".omniret", *, model: str | None = "auto", **kwargs: Any) -> OmniretLlamaRetriever:
        return cls(Index.open(path, model=model), **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(query_bundle.query_str, k=self.k, **self.search_kwargs)
        return [NodeWithScore(node=_node(h), score=float(h.score)) for h in hits]


def _node(hit: Hit) -> TextNode:
    meta = hit_metadata(hit)
    path = local_path(hit.uri)
    if hit.modality is Modality.IMAGE and path is not None and os.path.isfile(path):
        return ImageNode(id_=hit.id, text=hit_text(hit), metadata=meta, image_path=path)
    return TextNode(id_=hit.id, text=hit_text(hit), metadata=meta)
