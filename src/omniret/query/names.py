"""The names a search accepts for its stages and granularity: the one source for the ranking pipeline,
the CLI's choices and the server. Plain tuples, so a client (the CLI talking to ``omniret daemon``)
reads them without importing numpy or the stages."""

from __future__ import annotations

HUBNESS = ("none", "is", "qbnorm", "dbnorm", "dualdis")
GAP = ("none", "center", "calibrate")
COMPOSE = ("sum", "weimo", "pdv")
HYBRID = ("none", "rrf", "minmax", "zscore")
ROUTES = ("auto", "all", "llm")
#: ``auto``: documents at the page (blocks and sections roll up to their page, navigation left out), the
#: rest as found; ``item``: every item as found; ``parent``: one level up; ``root``: the top of the chain
GRANULARITIES = ("auto", "item", "parent", "root")
