"""GPU ingest fast path: JPEGs decoded by nvjpeg, resized and normalised on the GPU, encoded in fp16.

On a CUDA device the CPU cannot decode 1600×1200 JPEGs fast enough to feed a ViT-B-32 (Pillow
manages ~330 images/s on 16 processes; the encoder takes ~30,000/s). This path moves the decode
to the GPU: file bytes are read by a thread pool one group ahead (overlapped with the GPU work),
``torchvision.io.decode_jpeg(list, device="cuda")`` decodes a whole batch in one nvjpeg call, then
per image a shortest-side resize (``antialias=True``, the model's interpolation) and centre crop to
the model's input size, normalisation with the model's mean/std, and ``model.encode_image`` in the
model's precision (fp16 on CUDA). Items, ids, source states and commits are those of the CPU path
(:func:`omniret.ingest.work.file_items`, one :class:`WriteBatch` per group).

It applies only to open_clip encoders on CUDA and files whose bytes start with the JPEG marker;
everything else — and any JPEG nvjpeg refuses (progressive/CMYK corner cases, over ``max_pixels``)
— is handed back to the CPU path. Pixels differ from Pillow's resize by interpolation rounding
(cosine of the embeddings ≥ 0.99 in practice), which is why it is opt-out (``OMNIRET_GPU_DECODE=0``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from omniret.items import Modality

if TYPE_CHECKING:
    from omniret.encoders.base import Encoder
    from omniret.ingest.work import AddReport, DecodeTask, IngestOptions
    from omniret.store.base import Store

JPEG_MAGIC = b"\xff\xd8\xff"


def is_jpeg(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(3) == JPEG_MAGIC
    except OSError:
        return False


def applies(encoder: Encoder) -> bool:
    """Whether the fast path can serve ``encoder`` (open_clip on a CUDA device, not disabled)."""
    if os.environ.get("OMNIRET_GPU_DECODE", "1") == "0":
        return False
    from omniret.encoders.openclip import OpenClipEncoder

    return isinstance(encoder, OpenClipEncoder) and str(encoder.device).startswith("cuda")


class GpuPreprocess:
    """nvjpeg decode + resize + centre crop + normalise → ``(n, 3, size, size)`` tensor on the device."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], *, device: str = "cuda",
                 interpolation: str = "bicubic", dtype: Any = None) -> None:
        import torch

        self.size, self.device, self.interpolation = int(size), device, interpolation
        self.dtype = dtype or torch.float16
        self.mean = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0

    @classmethod
    def for_encoder(cls, encoder: Encoder, device: str, dtype: Any) -> GpuPreprocess:
        cfg = getattr(encoder.image_preprocessor(), "cfg", {})
        size = cfg.get("size", encoder.image_size or 224)
        size = size[0] if isinstance(size, (list, tuple)) else size
        return cls(int(size), cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
                   cfg.get("std", (0.26862954, 0.26130258, 0.27577711)), device=device,
                   interpolation=str(cfg.get("interpolation", "bicubic")), dtype=dtype)

    def decode(self, datas: Sequence[Any]) -> list[Any]:
        """Batched nvjpeg decode of uint8 byte tensors → CHW uint8 RGB tensors on the device."""
        from torchvision.io import ImageReadMode, decode_jpeg

        return list(decode_jpeg(list(datas), mode=ImageReadMode.RGB, device=self.device, apply_exif_orientation=True))

    def resize_crop(self, img: Any) -> Any:
        """Shortest side to ``size`` (antialiased), then the centre ``size × size`` crop: (1, 3, S, S) float."""
        return self.resize_crop_stack(img[None])

    def __call__(self, imgs: Sequence[Any]) -> Any:
        import torch

        x = torch.cat(self._resized(imgs))
        return ((x - self.mean) / self.std).to(self.dtype)

    def _resized(self, imgs: Sequence[Any]) -> list[Any]:
        """Resize + crop, one interpolate call per run of same-sized images (photo sets mostly share a size)."""
        import torch

        out: list[Any] = []
        i = 0
        while i < len(imgs):
            j = i + 1
            while j < len(imgs) and imgs[j].shape == imgs[i].shape:
                j += 1
            if j - i == 1:
                out.append(self.resize_crop(imgs[i]))
            else:
                out.append(self.resize_crop_stack(torch.stack(list(imgs[i:j]))))
            i = j
        return out

    def resize_crop_stack(self, batch: Any) -> Any:
        """:meth:`resize_crop` for a stack (n, 3, H, W) of same-sized images."""
        import torch.nn.functional as F  # noqa: N812

        from omniret.media.image import aspect_window

        _, _, h, w = batch.shape
        box = aspect_window(w, h)  # the shared aspect bound: a 1×60000 JPEG must not become 224×13M
        if box is not None:
            left, top, right, bottom = box
            batch, h, w = batch[:, :, top:bottom, left:right], bottom - top, right - left
        scale = self.size / min(h, w)
        nh, nw = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        mode = "bicubic" if self.interpolation == "bicubic" else "bilinear"
        x = F.interpolate(batch.float(), size=(nh, nw), mode=mode, antialias=True, align_corners=False)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        return x[:, :, top: top + self.size, left: left + self.size].clamp_(0, 255)


def _input_dtype(model: Any) -> Any:
    """The dtype the image tower's first convolution or linear layer computes in (its weights').

    open_clip's fp16 conversion leaves some parameters (class and positional embeddings) in fp32,
    so the first parameter's dtype is not the input dtype.
    """
    import torch

    tower = getattr(model, "visual", model)
    for m in tower.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            return m.weight.dtype
    return torch.float32


def _read(paths: Sequence[str]) -> list[Any]:
    """Each file as ``(uint8 tensor of its bytes, content hash)``, or ``None`` when it cannot be read."""
    import torch

    from omniret.sources.hashing import hash_bytes

    out: list[Any] = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            out.append(None)
            continue
        out.append((torch.frombuffer(bytearray(data), dtype=torch.uint8), hash_bytes(data)))
    return out


READ_THREADS = 8


def _read_parallel(pool: ThreadPoolExecutor, uris: Sequence[str]) -> list[Future[list[Any]]]:
    """Submit the reads of ``uris`` split across the pool's threads (file reads and hashing release the GIL)."""
    step = max(1, -(-len(uris) // READ_THREADS))
    return [pool.submit(_read, uris[i: i + step]) for i in range(0, len(uris), step)]


def _prefetched(groups: Sequence[Sequence[DecodeTask]], pool: ThreadPoolExecutor) -> Iterator[tuple[Sequence[DecodeTask], list[Any]]]:
    """Each group with its file bytes; the next group's bytes are read while this one is on the GPU."""
    nxt = _read_parallel(pool, [t.uri for t in groups[0]]) if groups else []
    for i, g in enumerate(groups):
        datas = [d for f in nxt for d in f.result()]
        nxt = _read_parallel(pool, [t.uri for t in groups[i + 1]]) if i + 1 < len(groups) else []
        yield g, datas


def encode_jpeg_group(tasks: Sequence[DecodeTask], datas: Sequence[Any], model: Any, pre: GpuPreprocess,
                      batch_size: int, max_pixels: int | None) -> tuple[list[tuple[DecodeTask, int, int]], np.ndarray, list[DecodeTask]]:
    """Decode + encode one group: ``(done (task, width, height), (n, dim) L2-normalised, leftovers)``."""
    import torch

    done: list[tuple[DecodeTask, int, int]] = []
    vecs: list[np.ndarray] = []
    left = [t for t, d in zip(tasks, datas, strict=True) if d is None]
    # the content hash of a new file is computed from the bytes read here (see ingest.DEFERRED_HASH)
    ok = [(replace(t, content_hash=d[1]), d[0]) for t, d in zip(tasks, datas, strict=True) if d is not None]
    with torch.inference_mode():
        for s in range(0, len(ok), batch_size):
            part = ok[s: s + batch_size]
            try:
                imgs = pre.decode([d for _, d in part])
            except RuntimeError:  # one bad file fails the batched call: hand the batch to the CPU path
                left.extend(t for t, _ in part)
                continue
            keep = [(t, im) for t, im in zip([t for t, _ in part], imgs, strict=True)
                    if max_pixels is None or im.shape[1] * im.shape[2] <= max_pixels]
            left.extend(t for t, im in zip([t for t, _ in part], imgs, strict=True)
                        if max_pixels is not None and im.shape[1] * im.shape[2] > max_pixels)
            if not keep:
                continue
            feats = model.encode_image(pre([im for _, im in keep])).float()
            vecs.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
            done.extend((t, int(im.shape[2]), int(im.shape[1])) for t, im in keep)
    mat = np.concatenate(vecs) if vecs else np.zeros((0, 0), np.float32)
    return done, mat, left


def ingest_jpegs(tasks: list[DecodeTask], store: Store, encoder: Encoder, options: IngestOptions,
                 report: AddReport) -> list[DecodeTask]:
    """The ingest hook: index the JPEG image tasks on the GPU; return the tasks left for the CPU path."""
    if not applies(encoder):
        return tasks
    jpegs = [t for t in tasks if t.modality is Modality.IMAGE and is_jpeg(t.uri)]
    if not jpegs:
        return tasks
    from omniret.ingest.work import DecodedFile, file_items
    from omniret.store.base import SourceState, WriteBatch

    model, _ = encoder._load()  # type: ignore[attr-defined]  # open_clip model, already on the device
    pre = GpuPreprocess.for_encoder(encoder, str(encoder.device), _input_dtype(model))
    group = max(options.commit_every, options.batch_size)
    groups = [jpegs[i: i + group] for i in range(0, len(jpegs), group)]
    leftovers: list[DecodeTask] = []
    pending: Future[None] | None = None
    # reads run one group ahead (pool), commits one group behind (committer): the GPU never waits on disk
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool, ThreadPoolExecutor(max_workers=1) as committer:
        for g, datas in _prefetched(groups, pool):
            done, mat, left = encode_jpeg_group(g, datas, model, pre, max(options.batch_size, 64), options.max_pixels)
            leftovers.extend(left)
            if not done:
                continue
            batch = WriteBatch()
            for t, _, _ in done:
                batch.delete_uris.append(t.uri)
                batch.sources.append(SourceState(t.uri, t.size, t.mtime_ns, t.content_hash))
            items = [file_items(DecodedFile(t, meta={"width": w, "height": h}))[0] for t, w, h in done]
            batch.add(items, {encoder.space: mat})
            if pending is not None:
                pending.result()  # commits stay in order; an error surfaces here
            pending = committer.submit(store.commit, batch)
            report.items += len(items)
        if pending is not None:
            pending.result()
    jpeg_ids = {id(t) for t in jpegs}
    return [t for t in tasks if id(t) not in jpeg_ids] + leftovers
