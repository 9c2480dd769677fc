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


#: how many matched blocks a page hit lists (best first) as its snippet
SNIPPET_BLOCKS = 3


def _page_child(h: Hit) -> bool:
    """A hit that a reader sees inside a larger unit, its parent: a block or section of a page (paged
    documents), or a chunk of a section, slide or sheet (the structured formats of ``ingest.structured``
    label their parts and chunks; plain text files' chunks carry no label and pass through)."""
    md = h.metadata
    if h.parent_id is None:
        return False
    if "page" in md:
        return "block" in md or "heading" in md
    return "chunk" in md and "label" in md


def _unit(h: Hit) -> bool:
    """A reader-level unit found as a hit itself: a page, or a part (section) of a structured document."""
    return not _page_child(h) and ("page" in h.metadata or "part" in h.metadata)


def document_pages(hits: Sequence[Hit], store: Store, *, keep_nav: bool = False) -> list[Hit]:
    """Documents at the reader's level: block and section hits replaced by their page, once per page;
    chunks of a structured document's section (HTML, Word, EPUB…) replaced by their section, once.

    A page scores its best matched item (max-pooling, order = best first) and lists up to
    :data:`SNIPPET_BLOCKS` matched items in ``metadata["matched"]`` (id, block, bbox, text, score,
    section; a section item adds its ``heading``), and takes the section of its best match. Items with
    a navigation or boilerplate ``role`` (contents, index, running heads) are left out unless
    ``keep_nav``. A page whose best matched text was already shown for an earlier page of the same
    file is folded into that hit (``metadata["also_pages"]``), so repeated text never fills the top.
    Other hits (images, text chunks, whole documents) pass through.
    """
    from omniret.media.structure import NAV_ROLES

    kept = [h for h in hits if keep_nav or h.metadata.get("role") not in NAV_ROLES]
    need = sorted({h.parent_id for h in kept if _page_child(h)} - {h.id for h in kept})
    pages = {p.id: p for p in store.get(need) if p is not None}
    pages.update({h.id: h for h in kept if _unit(h)})  # type: ignore[misc]
    order: list[str] = []
    groups: dict[str, list[Hit]] = {}
    for h in kept:
        key = h.parent_id if _page_child(h) and h.parent_id in pages else h.id
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(h)
    out: list[Hit] = []
    shown: dict[tuple[str, str], Hit] = {}
    for key in order:
        members = groups[key]
        if key not in pages or not any(_page_child(m) for m in members):
            out.append(members[0] if key not in pages else _page_hit(pages[key], members))
            continue
        hit = _page_hit(pages[key], members)
        best = hit.metadata["matched"][0]["text"] if hit.metadata.get("matched") else None
        paged = hit.metadata.get("page") is not None
        first = shown.get((hit.uri, best)) if best and paged else None
        if first is not None:
            first.metadata.setdefault("also_pages", []).append(hit.metadata.get("page"))
            continue
        if best and paged:
            shown[(hit.uri, best)] = hit
        out.append(hit)
    return out


def _page_hit(page: Item | Hit, members: Sequence[Hit]) -> Hit:
    matched = []
    for m in members:
        if not _page_child(m) or len(matched) >= SNIPPET_BLOCKS:
            continue
        md = m.metadata
        entry = {"id": m.id, "score": m.score, "text": (m.text or "")[:300]}
        for k in ("block", "chunk", "bbox", "section", "heading"):
            if k in md:
                entry[k] = md[k]
        matched.append(entry)
    meta = {k: v for k, v in page.metadata.items() if k not in ("matched", "also_pages")}
    if matched:
        meta["matched"] = matched
        if "section" in matched[0]:
            meta["section"] = matched[0]["section"]
    return Hit(id=page.id, score=members[0].score, modality=page.modality, uri=page.uri, parent_id=page.parent_id,
               span=page.span, text=page.text, metadata=meta)
