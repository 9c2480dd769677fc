"""Building hits from items, and rolling hits up the parent chain (chunks → file, blocks → page → document)."""

from __future__ import annotations

from collections.abc import Sequence

from omniret.items import Hit, Item
from omniret.store.base import Store


def make_hit(it: Item, score: float) -> Hit:
    """The hit of a stored item with the given score."""
    return Hit(id=it.id, score=score, modality=it.modality, uri=it.uri, parent_id=it.parent_id,
               span=it.span, text=it.text, metadata=it.metadata)


def granulate(hits: Sequence[Hit], store: Store, granularity: str) -> list[Hit]:
    """``item``: as found; ``parent``: one level up; ``root``: up the parent chain (blocks → page →
    document), every level max-pooling its children's scores (order = best child first)."""
    if granularity == "item":
        return list(hits)
    out = rollup(hits, store)
    for _ in range(8 if granularity == "root" else 0):  # parent chains are at most a few levels deep
        if not any(h.parent_id for h in out):
            break
        nxt = rollup(out, store)
        if [h.id for h in nxt] == [h.id for h in out]:
            break
        out = nxt
    return out


def rollup(hits: Sequence[Hit], store: Store) -> list[Hit]:
    """Children replaced by their parents, each parent scored by its best child (max-pooling)."""
    best: dict[str, Hit] = {}
    order: list[str] = []
    parent_ids = {h.parent_id for h in hits if h.parent_id}
    parents = {p.id: p for p in store.get(sorted(parent_ids)) if p is not None}
    for h in hits:
        key = h.parent_id if h.parent_id in parents else h.id
        if key in best:
            continue
        best[key] = make_hit(parents[key], h.score) if key in parents else h
        order.append(key)
    return [best[key] for key in order]
