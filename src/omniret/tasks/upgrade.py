"""Model upgrades without re-indexing first (spec §11): map, then re-embed incrementally, then switch.

1. :func:`fit_upgrade` embeds a sample of the index's own items with the new model, pairs them
   with their stored old-model vectors, fits a closed-form map ``W`` from the new space to the old
   one (least squares, or orthogonal Procrustes, Schoenemann 1966; a training-free baseline of XBT,
   Jang & Lim, ICCV 2025, arXiv 2405.14715), reports new->old against old->old recall@K on
   held-out pairs, and stores ``W`` in the index folder with a manifest entry
   ``upgrade: {to, method, dim, state: "mapped", ...}``. From then on queries embedded by the new
   model are mapped (``normalize(x_new W)``) and search the old vectors at once:
   :class:`MappedQueryEncoder`, which :func:`encoder_for` builds from the manifest.
2. :func:`resume_upgrade` re-embeds, in committed batches, every item that has an old-space vector
   but no new-space one; it can be killed at any point and re-run (each batch is one atomic commit
   of new-space vectors only). When none is left the manifest switches the index to the new
   encoder (``state: "complete"``); old vectors are kept unless ``drop_old=True``.
3. :func:`abort_upgrade` leaves an upgrade that is ``mapped`` or ``reembedding``: the new-space
   vectors and the map are deleted and queries use the index's own model again (``state: "aborted"``).

A new model must embed every modality the index holds vectors of in its space (:func:`uncovered`):
a text-only model cannot map or re-embed images, so :func:`fit_upgrade` refuses it up front.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from omniret.encoders.base import Encoder, ImagePreprocessor
from omniret.errors import MediaError, ModelError, OmniretError, QueryError, StoreError
from omniret.items import Item, Modality, Role
from omniret.methods.upgrade import apply_map, compatibility_recall, fit_map
from omniret.store.base import Filter, Store, WriteBatch

__all__ = ["MappedQueryEncoder", "ResumeReport", "UpgradeReport", "abort_upgrade", "encoder_for", "fit_upgrade",
           "resume_upgrade", "uncovered"]

MAP_DIR = "upgrade"
ACTIVE = ("mapped", "reembedding")
RegistryCreate = Callable[..., Encoder]


class MappedQueryEncoder(Encoder):
    """The new model, its outputs mapped into the old space: ``normalize(new(x) W)``.

    Same ``space`` and ``dim`` as the old model, so it searches the old vectors; embeds whatever
    modalities the new model embeds.
    """

    def __init__(self, new: Encoder, W: np.ndarray, old_space: str, old_name: str) -> None:
        w = np.asarray(W, dtype=np.float32)
        if w.ndim != 2 or w.shape[0] != new.dim:
            raise ModelError(f"the upgrade map has shape {w.shape}; model {new.name!r} needs ({new.dim}, old dim)")
        self.new, self.W = new, w
        self.name = new.name
        self.space = old_space
        self.dim = int(w.shape[1])
        self.modalities = new.modalities
        self.image_size = new.image_size
        self.audio_rate = new.audio_rate
        self.languages = new.languages
        self.old_name = old_name

    def config(self) -> dict[str, Any]:
        return self.new.config()

    def _map(self, x: np.ndarray) -> np.ndarray:
        return apply_map(x, self.W).astype(np.float32)

    def encode_text(self, texts: Sequence[str], *, role: Role = Role.QUERY) -> np.ndarray:
        return self._map(self.new.encode_text(texts, role=role))

    def image_preprocessor(self) -> ImagePreprocessor:
        return self.new.image_preprocessor()

    def encode_pixels(self, pixels: np.ndarray, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        return self._map(self.new.encode_pixels(pixels, role=role))

    def encode_audio(self, waves: Sequence[np.ndarray], sample_rate: int, *, role: Role = Role.DOCUMENT) -> np.ndarray:
        return self._map(self.new.encode_audio(waves, sample_rate, role=role))


@dataclass(frozen=True)
class UpgradeReport:
    """What :func:`fit_upgrade` did: pairs used, held out, and recall@K (``{"new_to_old": {k: r}, ...}``)."""

    to: str
    method: str
    pairs: int
    held_out: int
    recall: dict[str, dict[int, float]]
    map_file: str

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "method": self.method, "pairs": self.pairs, "held_out": self.held_out,
                "recall": {k: {str(kk): v for kk, v in d.items()} for k, d in self.recall.items()},
                "map_file": self.map_file}


@dataclass
class ResumeReport:
    """What one :func:`resume_upgrade` run did."""

    embedded: int = 0
    remaining: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    switched: bool = False
    dropped_old: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"embedded": self.embedded, "remaining": self.remaining, "switched": self.switched,
                "dropped_old": self.dropped_old, "failed": [{"uri": u, "reason": r} for u, r in self.failed]}


# -- the manifest entry ---------------------------------------------------------------------------
def _entry(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    up = manifest.get("upgrade")
    return dict(up) if isinstance(up, Mapping) else None


def _map_path(index_path: str | os.PathLike[str] | None, entry: Mapping[str, Any]) -> Path:
    rel = Path(str(entry.get("file", "")))
    if rel.is_absolute() or index_path is None:
        return rel
    return Path(os.fspath(index_path)) / rel


def load_map(index_path: str | os.PathLike[str] | None, entry: Mapping[str, Any]) -> np.ndarray:
    """The stored map ``W`` of a manifest ``upgrade`` entry."""
    path = _map_path(index_path, entry)
    try:
        w = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise StoreError(f"the upgrade map {path} cannot be read ({e}); run `omniret upgrade --to "
                         f"{entry.get('to')}` again to refit it") from e
    return np.asarray(w, dtype=np.float32)


def encoder_for(manifest: Mapping[str, Any], registry_create: RegistryCreate,
                index_path: str | os.PathLike[str] | None = None, **enc_kwargs: Any) -> Encoder | None:
    """The query encoder an index in the middle of an upgrade must use, else ``None``.

    While ``manifest["upgrade"]["state"]`` is ``mapped`` or ``reembedding``: the new model wrapped
    in :class:`MappedQueryEncoder` (old space and dim). After the switch-over (``complete``) the
    manifest's ``encoder`` entry already names the new model, so ``None``.
    """
    entry = _entry(manifest)
    if entry is None or entry.get("state") not in ACTIVE:
        return None
    new = registry_create(entry["to"], **{**entry.get("config", {}), **enc_kwargs})
    old = manifest.get("encoder", {})
    return MappedQueryEncoder(new, load_map(index_path, entry), str(old.get("space")), str(old.get("name")))


def _encoder_entry(enc: Encoder) -> dict[str, Any]:
    return {"name": enc.name, "config": enc.config(), "space": enc.space, "dim": enc.dim,
            "modalities": sorted(m.value for m in enc.modalities)}


# -- what the new model must embed --------------------------------------------------------------------
#: the input a model must embed to give an item of each modality its vector in the main space
_NEEDS = {Modality.IMAGE: Modality.IMAGE, Modality.VIDEO: Modality.IMAGE, Modality.TEXT: Modality.TEXT,
          Modality.DOCUMENT: Modality.TEXT, Modality.AUDIO: Modality.AUDIO}


def uncovered(store: Store, old: Encoder | Mapping[str, Any], new: Encoder) -> dict[Modality, int]:
    """Item counts, by modality, of what the index holds in its space that ``new`` cannot embed.

    Audio counts only when the old model embeds audio itself (else recordings live in the audio
    model's space, which an upgrade of the main model leaves alone)."""
    if isinstance(old, Encoder):
        old_mods = {m.value for m in old.modalities}
    else:
        old_mods = set(old.get("modalities") or [m.value for m in Modality])
    out: dict[Modality, int] = {}
    for mod, need in _NEEDS.items():
        if new.supports(need) or (mod is Modality.AUDIO and "audio" not in old_mods):
            continue
        n = store.count(Filter(modalities=frozenset({mod})))
        if n:
            out[mod] = n
    return out


def _refuse_uncovered(store: Store, old: Encoder | Mapping[str, Any], new: Encoder, to: str) -> None:
    missing = uncovered(store, old, new)
    if not missing:
        return
    needs = sorted({_NEEDS[m].value for m in missing})
    held = ", ".join(f"{n} {m.value} item(s)" for m, n in sorted(missing.items(), key=lambda kv: kv[0].value))
    can = " and ".join(sorted(m.value for m in new.modalities)) or "nothing"
    raise QueryError(f"model {to!r} cannot embed {' or '.join(needs)} (it embeds {can}); this index holds {held} "
                     "that it could neither map nor re-embed. Choose a model that embeds every modality of the "
                     "index (e.g. an openclip: model for images and text), or build a separate index for it")


# -- pairs ----------------------------------------------------------------------------------------------
def _pairable(it: Item, new: Encoder) -> bool:
    if it.modality is Modality.TEXT and it.text and it.text.strip():
        return new.supports(Modality.TEXT)
    return it.modality is Modality.IMAGE and it.parent_id is None and new.supports(Modality.IMAGE)


def _sample(store: Store, space: str, new: Encoder, n: int, seed: int) -> list[Item]:
    """A uniform sample (reservoir, Vitter 1985's algorithm R) of ``n`` items that both models embed."""
    rng = np.random.default_rng(seed)
    chosen: list[Item] = []
    seen = 0
    for chunk in _chunked(store.iter_items(), 1000):
        vecs = store.vectors(space, [it.id for it in chunk])
        for it, v in zip(chunk, vecs, strict=True):
            if np.isnan(v).any() or not _pairable(it, new):
                continue
            seen += 1
            if len(chosen) < n:
                chosen.append(it)
            else:
                j = int(rng.integers(seen))
                if j < n:
                    chosen[j] = it
    return chosen


def _chunked(it: Iterator[Item], size: int) -> Iterator[list[Item]]:
    buf: list[Item] = []
    for x in it:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _embed_pairs(items: list[Item], new: Encoder, batch_size: int) -> tuple[list[Item], np.ndarray]:
    """New-model document vectors of sampled items (images re-decoded from their files; bad ones left out)."""
    from omniret import media

    kept: list[Item] = []
    rows: list[np.ndarray] = []
    texts = [it for it in items if it.modality is Modality.TEXT]
    for i in range(0, len(texts), batch_size):
        part = texts[i : i + batch_size]
        rows.append(new.encode_text([it.text or "" for it in part], role=Role.DOCUMENT))
        kept += part
    images = [it for it in items if it.modality is Modality.IMAGE]
    for i in range(0, len(images), batch_size):
        ok, ims = [], []
        for it in images[i : i + batch_size]:
            try:
                ims.append(media.decode(it.uri, Modality.IMAGE, target_size=new.image_size))
                ok.append(it)
            except MediaError:
                continue
        if ims:
            rows.append(new.encode_images(ims, role=Role.DOCUMENT))
            kept += ok
    return kept, (np.concatenate(rows) if rows else np.zeros((0, new.dim), dtype=np.float32))


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _caption_recall(old: Encoder | None, new: Encoder, items: list[Item], gallery: np.ndarray,
                    W: np.ndarray) -> dict[str, dict[int, float]] | None:
    """Text->item recall of held-out items that carry a caption/title, new->old vs old->old."""
    if old is None or isinstance(old, MappedQueryEncoder):
        return None
    pairs = [(i, str(it.metadata.get(key)).strip()) for i, it in enumerate(items) if it.modality is Modality.IMAGE
             for key in ("caption", "title", "alt") if isinstance(it.metadata.get(key), str)
             and str(it.metadata.get(key)).strip()][: len(items)]
    if not pairs:
        return None
    caps = [c for _, c in pairs]
    targets = np.array([i for i, _ in pairs])
    rec = compatibility_recall(new.encode_text(caps, role=Role.QUERY), old.encode_text(caps, role=Role.QUERY),
                               gallery, targets, W)
    return {"caption_new_to_old": rec["new_to_old"], "caption_old_to_old": rec["old_to_old"]}


def fit_upgrade(
    index: Any,
    to: str,
    *,
    method: Literal["lstsq", "procrustes"] = "lstsq",
    pairs: int = 2000,
    holdout: float = 0.2,
    ridge: float = 0.0,
    seed: int = 0,
    batch_size: int = 64,
    registry_create: RegistryCreate | None = None,
) -> UpgradeReport:
    """Fit and store the map from model ``to``'s space into the index's space (module docstring, step 1).

    ``pairs`` items (text items and image files, a uniform sample) are embedded by the new model
    and paired with their stored vectors; ``holdout`` of them are kept out of the fit and give
    the reported recall@1/5/10 (new->old through the map, against the old->old upper bound); the
    stored map is then refitted on all pairs.
    """
    if not 0.0 < holdout < 1.0:
        raise QueryError(f"holdout is the share of pairs kept for evaluation: give a value in (0, 1), got {holdout}")
    if pairs < 3:
        raise QueryError(f"pairs must be >= 3 (two to fit, one to evaluate), got {pairs}")
    store: Store = index.store
    manifest = store.manifest()
    old = manifest.get("encoder") or {}
    entry = _entry(manifest)
    if entry and entry.get("state") in ACTIVE and entry.get("to") != to:
        raise QueryError(f"an upgrade to {entry.get('to')!r} is in progress; finish it with `omniret upgrade "
                         f"--resume` before upgrading to {to!r}")
    if entry and entry.get("state") in ACTIVE and isinstance(index.encoder, MappedQueryEncoder):
        new = index.encoder.new
    else:
        new = (registry_create or _registry())(to)
    space = str(old.get("space") or index.encoder.space)
    if new.space == space:
        raise QueryError(f"model {to!r} embeds into the index's own space {space!r}; there is nothing to map")
    try:
        _refuse_uncovered(store, old or index.encoder, new, to)
    except QueryError as e:
        if entry and entry.get("state") in ACTIVE:
            raise QueryError(f"{e}; `omniret upgrade --abort` leaves the upgrade in progress") from None
        raise
    items, x_new = _embed_pairs(_sample(store, space, new, pairs, seed), new, batch_size)
    if len(items) < 3:
        raise QueryError(f"only {len(items)} items can be embedded by both models; the map needs at least 3 "
                         "(add text items or image files to the index first)")
    y_old = _normalize(store.vectors(space, [it.id for it in items]))
    x_new = _normalize(x_new)
    perm = np.random.default_rng(seed).permutation(len(items))
    n_hold = min(len(items) - 2, max(1, round(holdout * len(items))))
    held, train = perm[:n_hold], perm[n_hold:]
    w_train = fit_map(x_new[train], y_old[train], method, ridge)
    recall = compatibility_recall(x_new[held], y_old[held], y_old[held], np.arange(n_hold), w_train)
    recall.update(_caption_recall(index.encoder, new, [items[i] for i in held], y_old[held], w_train) or {})
    W = fit_map(x_new, y_old, method, ridge).astype(np.float32)
    rel = _save_map(index.files, W, new.space)
    store.set_manifest({**manifest, "upgrade": {
        "to": new.name, "config": new.config(), "method": method, "dim": new.dim, "new_space": new.space,
        "old_dim": int(W.shape[1]), "state": "mapped", "file": rel, "pairs": len(items), "held_out": n_hold,
        "recall": {k: {str(kk): v for kk, v in d.items()} for k, d in recall.items()}, "created": time.time()}})
    return UpgradeReport(new.name, method, len(items), n_hold, recall, rel)


def _save_map(index_path: str, W: np.ndarray, new_space: str) -> str:
    """Write ``W`` atomically under the index folder; returns its path relative to the folder."""
    folder = Path(index_path) / MAP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = "map-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in new_space) + ".npy"
    tmp = folder / (name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, W, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    return f"{MAP_DIR}/{name}"


# -- re-embedding and switch-over -------------------------------------------------------------------------
def _missing(store: Store, old_space: str, new_space: str, chunk: int = 1000) -> Iterator[Item]:
    """Items with an old-space vector and no new-space vector, in store order."""
    has_new = new_space in store.spaces()
    for items in _chunked(store.iter_items(), chunk):
        ids = [it.id for it in items]
        old = ~np.isnan(store.vectors(old_space, ids)).any(axis=1)
        new = ~np.isnan(store.vectors(new_space, ids)).any(axis=1) if has_new else np.zeros(len(ids), bool)
        yield from (it for it, o, n in zip(items, old, new, strict=True) if o and not n)


def _reembed(items: list[Item], new: Encoder, batch_size: int) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """New-space vectors of ``items``: text chunks directly, everything else by decoding its file again
    through the ingest code (so pages, segments and pooled parents embed exactly as ``add`` does)."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    texts = [it for it in items if it.modality is Modality.TEXT and it.text]
    for i in range(0, len(texts), batch_size):
        part = texts[i : i + batch_size]
        rows.append(new.encode_text([it.text or "" for it in part], role=Role.DOCUMENT))
        ids += [it.id for it in part]
    failed: list[tuple[str, str]] = []
    by_uri: dict[str, set[str]] = {}
    for it in items:
        if not (it.modality is Modality.TEXT and it.text):
            by_uri.setdefault(it.uri, set()).add(it.id)
    for uri, wanted in by_uri.items():
        try:
            got_ids, mat = _reembed_file(uri, wanted, new, batch_size)
        except (MediaError, StoreError, ModelError, OSError) as e:
            failed.append((uri, str(getattr(e, "reason", e))))
            continue
        ids += got_ids
        rows.append(mat)
        if len(got_ids) < len(wanted):
            failed.append((uri, f"{len(wanted) - len(got_ids)} item(s) no longer in the file"))
    mats = [r for r in rows if len(r)]
    return ids, (np.concatenate(mats) if mats else np.zeros((0, new.dim), np.float32)), failed


def _reembed_file(uri: str, wanted: set[str], new: Encoder, batch_size: int) -> tuple[list[str], np.ndarray]:
    from omniret.ingest.run import decode_file, encode_files, media_config
    from omniret.ingest.work import DecodeConfig, DecodeTask, IngestOptions
    from omniret.sources.walk import walk

    try:
        found = walk([uri]).files
    except OmniretError as e:  # a vanished path
        raise MediaError(uri, f"the file is gone ({e})") from e
    if not found:
        raise MediaError(uri, "the file is no longer a supported source file")
    info = found[0]
    opts = IngestOptions()
    config = DecodeConfig(
        preprocess=new.image_preprocessor() if new.supports(Modality.IMAGE) else None,
        target_size=new.image_size, max_pixels=opts.max_pixels, chunk_chars=opts.chunk_chars,
        chunk_overlap=opts.chunk_overlap, media=media_config(opts, new, None))
    d = decode_file(DecodeTask(info.uri, info.modality, info.size, info.mtime_ns, ""), config)
    if d.error is not None:
        raise MediaError(uri, d.error)
    ids, mat = encode_files([d], new, batch_size).vectors.get(new.space, ([], np.zeros((0, new.dim))))
    keep = [i for i, x in enumerate(ids) if x in wanted]
    return [ids[i] for i in keep], np.asarray(mat)[keep]


def resume_upgrade(
    index: Any,
    *,
    commit_every: int = 256,
    batch_size: int = 64,
    limit: int | None = None,
    drop_old: bool = False,
    registry_create: RegistryCreate | None = None,
    progress: Callable[[int], None] | None = None,
) -> ResumeReport:
    """Re-embed items that lack a new-space vector, one commit per ``commit_every`` items, then switch.

    Killable: every commit is atomic and a re-run skips what is done. ``limit`` stops after that
    many items (then ``remaining`` says what is left). When nothing is left (and no item failed)
    the manifest's encoder becomes the new model; ``drop_old=True`` then deletes the old vectors.
    """
    store: Store = index.store
    manifest = store.manifest()
    entry = _entry(manifest)
    if entry is None or entry.get("state") == "aborted":
        raise QueryError("this index has no model upgrade in progress; start one with `omniret upgrade --to MODEL`")
    if entry.get("state") not in ACTIVE:
        return ResumeReport(switched=entry.get("state") == "complete")
    if commit_every < 1 or batch_size < 1 or (limit is not None and limit < 0):
        raise QueryError("commit_every and batch_size must be >= 1 and limit >= 0")
    old_space = str(manifest["encoder"]["space"])
    new = index.encoder.new if isinstance(index.encoder, MappedQueryEncoder) else \
        (registry_create or _registry())(entry["to"], **entry.get("config", {}))
    if entry["state"] != "reembedding":
        store.set_manifest({**manifest, "upgrade": {**entry, "state": "reembedding"}})
    report = ResumeReport()
    todo: list[Item] = []
    budget = limit

    def flush() -> None:
        ids, mat, failed = _reembed(todo, new, batch_size)
        if ids:
            store.commit(WriteBatch(vectors={new.space: (ids, mat)}))
        report.embedded += len(ids)
        report.failed += failed
        todo.clear()
        if progress:
            progress(report.embedded)

    for it in _missing(store, old_space, new.space):
        if budget is not None and budget <= 0:
            report.remaining += 1
            continue
        todo.append(it)
        budget = None if budget is None else budget - 1
        if len(todo) >= commit_every:
            flush()
    if todo:
        flush()
    report.remaining = sum(1 for _ in _missing(store, old_space, new.space))
    if report.remaining == 0 and not report.failed:
        _switch(store, new, old_space, drop_old)
        report.switched, report.dropped_old = True, drop_old
    return report


def abort_upgrade(index: Any) -> dict[str, Any]:
    """Leave the upgrade in progress (``mapped`` or ``reembedding``): delete the vectors re-embedded so far
    and the map, and record ``state: "aborted"``; queries use the index's own model again once it is
    reopened. Returns ``{"aborted": model, "state": the state left, "dropped_vectors": n}``."""
    store: Store = index.store
    manifest = store.manifest()
    entry = _entry(manifest)
    if entry is None or entry.get("state") not in ACTIVE:
        state = (entry or {}).get("state")
        done = f" (the upgrade to {entry.get('to')!r} is {state})" if entry else ""
        raise QueryError(f"this index has no model upgrade in progress to abort{done}")
    new_space = str(entry.get("new_space") or "")
    dropped = 0
    if new_space and new_space in store.spaces():
        ids = [it.id for it in store.iter_items()]
        dropped = sum(int((~np.isnan(store.vectors(new_space, ids[i : i + 1000])).any(axis=1)).sum())
                      for i in range(0, len(ids), 1000))
        if dropped:
            _drop_space(store, new_space)
    store.set_manifest({**manifest, "upgrade": {**entry, "state": "aborted", "aborted": time.time(),
                                                "aborted_from": entry.get("state")}})
    if getattr(index, "files", None):
        _map_path(index.files, entry).unlink(missing_ok=True)
    return {"aborted": entry.get("to"), "state": entry.get("state"), "dropped_vectors": dropped}


def _registry() -> RegistryCreate:
    from omniret.encoders.registry import create

    return create


def _switch(store: Store, new: Encoder, old_space: str, drop_old: bool) -> None:
    """Every item has its new vector: the manifest now names the new encoder."""
    if drop_old:
        _drop_space(store, old_space)
    manifest = store.manifest()
    entry = _entry(manifest) or {}
    spaces = dict(manifest.get("spaces", {}))
    spaces[new.space] = {"dim": new.dim, "metric": "ip", "normalized": True, "encoder": new.name}
    if drop_old:
        spaces.pop(old_space, None)
    store.set_manifest({**manifest, "encoder": _encoder_entry(new), "spaces": spaces, "upgrade": {
        **entry, "state": "complete", "from": manifest.get("encoder"), "switched": time.time(),
        "old_vectors": "dropped" if drop_old else "kept"}})


def _drop_space(store: Store, space: str, chunk: int = 1000) -> None:
    """Delete the vectors of ``space``: each item re-written with its vectors in the other spaces."""
    ids = [it.id for it in store.iter_items()]
    others = [s for s in store.spaces() if s != space]
    for i in range(0, len(ids), chunk):
        items = [it for it in store.get(ids[i : i + chunk]) if it is not None]
        batch = WriteBatch(items=[replace(it) for it in items])
        part = [it.id for it in items]
        for s in others:
            vecs = store.vectors(s, part)
            keep = ~np.isnan(vecs).any(axis=1)
            if keep.any():
                batch.vectors[s] = ([x for x, k in zip(part, keep, strict=True) if k], vecs[keep])
        store.commit(batch)
