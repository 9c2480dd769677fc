"""Few-pair alignment (``omniret align --pairs pairs.jsonl``): learn an image projector into the index's
text space with STRUCTURE, store it in the index, re-embed the images, switch to ``offline+aligned``.

1. **Pairs.** ``pairs.jsonl`` holds one ``{"image": path, "text": caption}`` per line (paths relative to
   the file); each image goes through the offline model's EfficientNet-Lite0 (pooled 1280-d features and
   class probabilities), each text through its text side (as a query: the projected images will be
   compared with queries). ``imagenet_prompts=True`` adds 1,000 pairs needing no image at all — the
   classifier's own class weight vectors (rows of its last layer, the feature-space direction of each
   class) with the class-name prompt embeddings the ConSE bridge uses.
2. **Training** (torch, CPU is enough): a linear map ``W, b`` on centred unit features, initialised by
   ridge regression onto the paired text embeddings, then trained with CLIP's symmetric InfoNCE against
   the fixed text embeddings plus λ · STRUCTURE's regulariser on the image side (Gröger et al., NeurIPS
   2025; :mod:`omniret.methods.alignment` holds the formulas and the numpy reference this loss is
   tested against), λ ramped up over ``warmup_steps`` as in the paper's code.
3. **Mixing.** ``mix`` α (the ConSE weight, :mod:`omniret.encoders.aligned`) is chosen on held-out
   pairs (``val_fraction``) by text→image recall@10 among them (ties: the larger α, closer to today's
   model), unless given.
4. **Index.** The projector is written to ``<index>/align/projector.npz``; the manifest records
   ``align`` (its state, digest, pairs, metrics); every item embedded from pixels (images, video
   frames, scanned pages) is re-embedded in committed batches (text vectors do not change); then the
   manifest's encoder becomes ``offline+aligned``. Killed half-way, a re-run trains and re-embeds again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.aligned import NAME, AlignedOfflineEncoder, Projector
from omniret.encoders.offline import OfflineEncoder, conse_combine
from omniret.errors import MediaError, ModelError, QueryError
from omniret.items import Modality, Role
from omniret.store.base import Filter, WriteBatch

PROJECTOR = "align/projector.npz"
MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class AlignConfig:
    """How the projector is trained (the paper's defaults where it has one: λ 10, one level, τ 0.07)."""

    structure_lambda: float = 10.0
    levels: int = 1
    tau: float = 0.07
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ridge: float = 1.0
    val_fraction: float = 0.1
    seed: int = 0
    mix: float | None = None
    imagenet_prompts: bool = False

    def validate(self) -> None:
        if self.structure_lambda < 0 or self.levels < 1 or self.tau <= 0 or self.epochs < 0 or self.batch_size < 2:
            raise QueryError("align: need structure_lambda >= 0, levels >= 1, tau > 0, epochs >= 0, batch_size >= 2")
        if not 0.0 <= self.val_fraction < 0.9:
            raise QueryError(f"align: val_fraction must be in [0, 0.9), got {self.val_fraction}")
        if self.mix is not None and not 0.0 <= self.mix <= 1.0:
            raise QueryError(f"align: mix must be in [0, 1], got {self.mix}")


@dataclass(frozen=True)
class Pair:
    image: str
    text: str


@dataclass
class AlignReport:
    pairs: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    mix: float = 0.5
    validation: dict[str, float] = field(default_factory=dict)
    reembedded: int = 0
    seconds: float = 0.0
    history: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """The (image, text) pairs of a JSONL file; relative image paths are taken from the file's folder."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise QueryError(f"cannot read the pairs file {p}: {e}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image, text = row["image"], row.get("text", row.get("caption"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise QueryError(f"{p}:{n}: expected a JSON object with \"image\" and \"text\"") from e
        if not isinstance(image, str) or not isinstance(text, str) or not text.strip():
            raise QueryError(f"{p}:{n}: \"image\" must be a path and \"text\" a non-empty string")
        out.append(Pair(str(p.parent / image) if not os.path.isabs(image) else image, text.strip()))
    if not out:
        raise QueryError(f"{p} holds no pairs; write one {{\"image\": ..., \"text\": ...}} per line")
    return out


def pair_arrays(encoder: OfflineEncoder, pairs: Sequence[Pair], batch_size: int = 64,
                progress: Callable[[int], None] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """``(features (n, 1280), probabilities (n, 1000), text embeddings (n, d), failed)`` of the pairs whose
    image could be read (failed: ``(path, reason)``)."""
    from omniret.media.image import load_image

    pre = encoder.image_preprocessor()
    feats, probs, keep, failed = [], [], [], []
    for i in range(0, len(pairs), batch_size):
        px = []
        for j, pr in enumerate(pairs[i : i + batch_size], i):
            try:
                px.append(pre(load_image(pr.image, target_size=encoder.image_size)))
                keep.append(j)
            except (MediaError, OSError, ModelError) as e:
                failed.append((pr.image, str(getattr(e, "reason", e))))
        if px:
            p, f = encoder.classify(np.stack(px))
            probs.append(p)
            feats.append(f)
        if progress:
            progress(min(i + batch_size, len(pairs)))
    if not keep:
        raise QueryError(f"none of the {len(pairs)} pair images could be read (first: {failed[0] if failed else '-'})")
    texts = encoder.encode_text([pairs[j].text for j in keep], role=Role.QUERY)
    return np.concatenate(feats), np.concatenate(probs), texts, failed


def imagenet_prompt_pairs(encoder: OfflineEncoder) -> tuple[np.ndarray, np.ndarray]:
    """1,000 image-free pairs: the classifier's class weight rows (feature space) and the class-name
    prompt embeddings (text space) of the ConSE bridge."""
    model = encoder._image_model()
    weights = model._fc.weight.detach().float().cpu().numpy()
    return weights.astype(np.float32), np.asarray(encoder.class_embeddings(), dtype=np.float32)


def train_projector(feats: np.ndarray, texts: np.ndarray, cfg: AlignConfig = AlignConfig(),
                    log: Callable[[str], None] | None = None) -> tuple[Projector, list[float]]:
    """The projector trained on ``feats`` → ``texts`` (row pairs); returns it and the mean loss per epoch."""
    import torch

    from omniret.tasks.align_loss import structure_loss, symmetric_info_nce

    cfg.validate()
    if len(feats) != len(texts) or len(feats) < 2:
        raise QueryError(f"align: need at least two pairs, got {len(feats)} features and {len(texts)} texts")
    x = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    mu = x.mean(axis=0)
    xc = x - mu
    t = np.asarray(texts, dtype=np.float64)
    w0 = np.linalg.solve(xc.T @ xc + cfg.ridge * np.eye(xc.shape[1]), xc.T @ (t - t.mean(axis=0)))
    gen = torch.Generator().manual_seed(cfg.seed)
    W = torch.nn.Parameter(torch.from_numpy(w0.astype(np.float32)))
    b = torch.nn.Parameter(torch.from_numpy(t.mean(axis=0).astype(np.float32)))
    opt = torch.optim.AdamW([W, b], lr=cfg.lr, weight_decay=cfg.weight_decay)
    X, XC, T = (torch.from_numpy(a.astype(np.float32)) for a in (x, xc, t))
    history, step = [], 0
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(X), generator=gen)
        total, batches = 0.0, 0
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            if len(idx) < 2:
                continue
            z = torch.nn.functional.normalize(XC[idx] @ W + b, dim=1)
            loss = symmetric_info_nce(z, T[idx], cfg.tau)
            lam = cfg.structure_lambda * min(1.0, step / max(cfg.warmup_steps, 1))
            if lam > 0:
                loss = loss + lam * structure_loss(X[idx], z, levels=cfg.levels, tau=cfg.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, batches, step = total + float(loss.detach()), batches + 1, step + 1
        history.append(total / max(batches, 1))
        if log and (epoch % 10 == 0 or epoch == cfg.epochs - 1):
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]:.4f}")
    return Projector(W.detach().numpy(), b.detach().numpy(), mu.astype(np.float32)), history


def recall_at(queries: np.ndarray, gallery: np.ndarray, k: int = 10) -> float:
    """Share of query rows whose own gallery row (same index) ranks in the top ``k`` (ties: the lower index)."""
    s = np.asarray(queries, np.float64) @ np.asarray(gallery, np.float64).T
    own = np.diag(s)
    rank = (s > own[:, None]).sum(axis=1) + ((s == own[:, None]) & (np.arange(len(s)) < np.arange(len(s))[:, None])).sum(axis=1)
    return float(np.mean(rank < k))


def choose_mix(projector: Projector, feats: np.ndarray, probs: np.ndarray, texts: np.ndarray,
               class_emb: np.ndarray, top_k: int) -> tuple[float, dict[str, float]]:
    """The ConSE weight α (from :data:`MIXES`) with the best text→image recall@10 on held-out pairs."""
    conse = conse_combine(probs, class_emb, top_k)
    aligned = projector(feats)
    table = {}
    for a in MIXES:
        img = conse if a == 1.0 else aligned if a == 0.0 else a * conse + (1 - a) * aligned
        img = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
        table[f"R@10 mix={a:g}"] = recall_at(texts, img, 10)
        table[f"R@1 mix={a:g}"] = recall_at(texts, img, 1)
    best = max(MIXES, key=lambda a: (table[f"R@10 mix={a:g}"], table[f"R@1 mix={a:g}"], a))
    return best, table


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(fraction * n)) if n >= 10 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def align_index(index: Any, pairs_path: str | os.PathLike[str], cfg: AlignConfig = AlignConfig(),
                log: Callable[[str], None] | None = None, batch_size: int = 64) -> AlignReport:
    """Train, store and switch to the projector for ``index`` (see the module docstring)."""
    from omniret.tasks.upgrade import _reembed

    cfg.validate()
    say = log or (lambda _m: None)
    base = index.encoder
    if not isinstance(base, OfflineEncoder) or base.blend != 1.0:
        raise ModelError(f"omniret align learns a projector for the offline model's CNN; this index uses "
                         f"{base.name!r}. Build the index with model='offline' (or 'offline:multilingual')")
    t0 = time.time()
    pairs = read_pairs(pairs_path)
    feats, probs, texts, failed = pair_arrays(base, pairs, batch_size)
    train, val = _split(len(feats), cfg.val_fraction, cfg.seed)
    say(f"{len(feats)} pairs ({len(failed)} unreadable images): {len(train)} to train, {len(val)} held out")
    tf, tt = feats[train], texts[train]
    if cfg.imagenet_prompts:
        wf, wt = imagenet_prompt_pairs(base)
        tf, tt = np.concatenate([tf, wf]), np.concatenate([tt, wt])
    projector, history = train_projector(tf, tt, cfg, say)
    mix, table = (cfg.mix, {}) if cfg.mix is not None or len(val) < 2 else \
        choose_mix(projector, feats[val], probs[val], texts[val], base.class_embeddings(), base.top_k)
    mix = 0.5 if mix is None else mix
    report = AlignReport(len(feats), failed, mix, table, history=history)
    say(f"mix (ConSE weight) {mix:g}" + (f"; held-out R@10 {table.get(f'R@10 mix={mix:g}', 0):.3f} vs ConSE "
                                         f"{table.get('R@10 mix=1', 0):.3f}" if table else ""))
    root = Path(index.files)
    digest = projector.save(root / PROJECTOR)
    enc = AlignedOfflineEncoder(projector=str(root / PROJECTOR), mix=mix, **base.config(), text=base.text)
    store = index.store
    entry = {"state": "reembedding", "projector": PROJECTOR, "encoder": NAME, "digest": digest, "pairs": len(feats),
             "mix": mix, "validation": table, "config": asdict(cfg), "trained": time.time()}
    store.set_manifest({**store.manifest(), "align": entry})
    report.reembedded = _reembed_pixels(store, enc, batch_size, _reembed)
    manifest = store.manifest()
    spaces = {**manifest.get("spaces", {}), enc.space: {"dim": enc.dim, "metric": "ip", "normalized": True,
                                                        "encoder": enc.name}}
    encoder_entry = {"name": enc.name, "config": enc.config(), "space": enc.space, "dim": enc.dim,
                     "modalities": sorted(m.value for m in enc.modalities)}
    store.set_manifest({**manifest, "encoder": encoder_entry, "spaces": spaces, "align": {**entry, "state": "complete"}})
    index.encoder = enc
    index._stats, index._space_stats = None, {}  # image moments changed: statistics are rebuilt on demand
    index._query_cache, index._fast = None, (False if getattr(index, "use_query_cache", False) else None)
    report.seconds = time.time() - t0
    return report


def _reembed_pixels(store: Any, enc: AlignedOfflineEncoder, batch_size: int, reembed: Callable[..., Any],
                    commit_every: int = 256) -> int:
    """Re-embed every item whose vector came from pixels (all but text); one commit per ``commit_every``."""
    items = list(store.iter_items(Filter(modalities=frozenset(set(Modality) - {Modality.TEXT}))))
    todo = []
    for i in range(0, len(items), 1024):  # only items with a vector in the space (audio has none here)
        part = items[i : i + 1024]
        has = ~np.isnan(store.vectors(enc.space, [it.id for it in part])).any(axis=1)
        todo += [it for it, h in zip(part, has, strict=True) if h]
    done = 0
    for i in range(0, len(todo), commit_every):
        ids, mat, _failed = reembed(todo[i : i + commit_every], enc, batch_size)
        if ids:
            store.commit(WriteBatch(vectors={enc.space: (ids, mat)}))
        done += len(ids)
    return done
