"""A LangChain retriever over an omniret index (``pip install 'omniret[langchain]'``).

    from omniret.adapters.langchain import OmniretRetriever
    retriever = OmniretRetriever.from_path(".omniret", k=5, search_kwargs={"modality": "text"})
    docs = retriever.invoke("how do I return an item?")

Every hit becomes a ``Document``: ``page_content`` is its text (or caption, or label), ``metadata`` its
id, score, uri, modality, pointers and own metadata. ``search_kwargs`` are ``Index.search`` keywords.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from omniret.adapters.common import hit_metadata, hit_text
from omniret.index import Index


class OmniretRetriever(BaseRetriever):
    """``BaseRetriever`` over :meth:`omniret.Index.search` (sync; LangChain runs it in a thread for async)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = 4
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str = ".omniret", *, model: str | None = "auto", **kwargs: Any) -> OmniretRetriever:
        """A retriever over the index folder ``path`` (opened with its recorded model)."""
        return cls(index=Index.open(path, model=model), **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.index.search(query, k=self.k, **self.search_kwargs)
        return [Document(page_content=hit_text(h), metadata=hit_metadata(h), id=h.id) for h in hits]
