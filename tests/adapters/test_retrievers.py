"""The LangChain and LlamaIndex retrievers against those libraries' own base classes (no LLM)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

import omniret

NOTES = {"rockets.md": "A rocket launch sends satellites into orbit around the earth.",
         "cooking.txt": "Boil the pasta in salted water, then add tomato sauce and basil.",
         "returns.txt": "Returns are free within 30 days of delivery; keep the receipt."}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> omniret.Index:
    d = tmp_path_factory.mktemp("docs")
    for name, text in NOTES.items():
        (d / name).write_text(text)
    Image.new("RGB", (32, 32), (220, 20, 20)).save(d / "red.png")
    idx = omniret.open(str(d / "idx"), model="fake")
    idx.add(str(d), workers=0)
    idx.add_records([{"id": "faq-1", "text": "Shipping takes three days.", "metadata": {"lang": "en"}}], workers=0)
    yield idx
    idx.close()


def test_langchain_retriever(index: omniret.Index) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from omniret.adapters.langchain import OmniretRetriever

    r = OmniretRetriever(index=index, k=2, search_kwargs={"modality": "text"})
    assert isinstance(r, BaseRetriever)
    docs = r.invoke("rocket launch satellites")
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.page_content.startswith("A rocket launch") and top.metadata["uri"].endswith("rockets.md")
    assert top.metadata["score"] >= docs[1].metadata["score"] and top.id == top.metadata["id"]
    assert r.batch(["pasta sauce", "free returns receipt"])[1][0].metadata["uri"].endswith("returns.txt")
    shipped = asyncio.run(r.ainvoke("shipping takes days"))
    assert shipped[0].metadata["id"] == "faq-1" and shipped[0].metadata["lang"] == "en"
    pics = OmniretRetriever(index=index, k=1, search_kwargs={"modality": "image"}).invoke("anything")
    assert pics[0].page_content == "red.png" and pics[0].metadata["modality"] == "image"


def test_llamaindex_retriever(index: omniret.Index, tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode

    from omniret.adapters.llamaindex import OmniretLlamaRetriever

    r = OmniretLlamaRetriever(index, k=3)
    assert isinstance(r, BaseRetriever)
    nodes = r.retrieve("boil pasta in salted water")
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert nodes[0].node.metadata["uri"].endswith("cooking.txt") and nodes[0].score == nodes[0].node.metadata["score"]
    assert isinstance(nodes[0].node, TextNode) and "salted water" in nodes[0].node.get_content()
    again = asyncio.run(r.aretrieve(QueryBundle("free returns receipt")))
    assert again[0].node.metadata["uri"].endswith("returns.txt")
    pics = OmniretLlamaRetriever(index, k=1, search_kwargs={"modality": "image"}).retrieve("red")
    assert isinstance(pics[0].node, ImageNode) and pics[0].node.image_path.endswith("red.png")
