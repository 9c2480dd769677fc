"""Retrievers for LLM frameworks over an :class:`omniret.Index`: :mod:`~omniret.adapters.langchain`
(a LangChain ``BaseRetriever``, extra ``langchain``) and :mod:`~omniret.adapters.llamaindex` (a
LlamaIndex ``BaseRetriever``, extra ``llamaindex``). Each turns hits into the framework's documents or
nodes with the hit's id, score, uri and pointers (page, timestamp, bbox) in their metadata. An app-layer
package: imports ``index`` and below, never ``cli``; the frameworks are imported only by their module.
"""
