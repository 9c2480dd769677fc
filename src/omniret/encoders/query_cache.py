"""The query cache: an encoder's ONNX query towers (:mod:`omniret.encoders.onnx`) kept next to the
index, and trusted only when they are intact and belong to the index's model.

Layout: ``<index folder>/query-cache/<key>/`` holding ``meta.json`` and the towers' files. The key
hashes everything the towers depend on: the cache format, the encoder's registry name, constructor
arguments, space and dim, and the fingerprint of its weight files (path, size, mtime: read with
``stat`` only). Another model, another configuration or new weights give another key, so a stale
cache is never read; building a new one removes the other folders.

Damage: ``meta.json`` records each file's size and CRC-32; a file is checked when it is read (once
per process, when its tower is first used, from the same bytes the runtime then parses). A missing,
truncated or altered file, or a ``meta.json`` that does not parse, removes the folder and raises
:class:`~omniret.encoders.onnx.CacheDamaged`; the caller embeds through the model and the next build
writes the cache again.

Building (:meth:`QueryCache.build`, needs torch) exports into a temporary folder, loads the result
back through the run side and compares it with the model on probe texts and images
(:func:`omniret.encoders.onnx.check_close`); only then is the folder renamed into place, so readers
never see half a cache, and of two builders at once one rename wins. An encoder whose towers cannot
be exported faithfully is recorded as ``failed`` for its key, so later searches do not try again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from omniret.encoders.base import Encoder, QueryTowers
from omniret.encoders.onnx import PROBE_TEXTS, CacheDamaged, OnnxQueryEncoder, check_close
from omniret.errors import ModelError
from omniret.items import Modality, Role

#: bump when the layout or the meaning of a file changes: older caches are then rebuilt
FORMAT = 1
DIR = "query-cache"
META = "meta.json"


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


class _Files:
    """The files of one cache folder, each verified against ``meta.json`` when read."""

    def __init__(self, folder: Path, recorded: dict[str, Any], on_damage: Any) -> None:
        self.folder, self.recorded, self.on_damage = folder, recorded, on_damage

    def read(self, name: str) -> bytes:
        want = self.recorded.get(name)
        try:
            data = (self.folder / name).read_bytes()
        except OSError as e:
            self.on_damage()
            raise CacheDamaged(f"query cache file {self.folder / name} cannot be read ({e}); it will be rebuilt") from e
        if want is None or len(data) != want.get("size") or _crc(data) != want.get("crc32"):
            self.on_damage()
            raise CacheDamaged(f"query cache file {self.folder / name} does not match its checksum; it will be rebuilt")
        return data

    def path(self, name: str) -> Path:
        self.read(name)
        return self.folder / name


def runtime_available() -> bool:
    """Whether onnxruntime and tokenizers are installed (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


class QueryCache:
    """The ONNX query towers of ``encoder`` for the index whose files live in ``folder``."""

    def __init__(self, encoder: Encoder, folder: str | os.PathLike[str]) -> None:
        self.encoder = encoder
        self.root = Path(folder) / DIR
        self._towers: QueryTowers | None = encoder.query_towers()
        self._key: str | None = None

    @property
    def supported(self) -> bool:
        """Whether the encoder has towers to export and the runtime is installed."""
        return self._towers is not None and runtime_available()

    def key(self) -> str:
        if self._key is None:
            assert self._towers is not None  # callers check supported
            enc = self.encoder
            payload = {"format": FORMAT, "name": enc.name, "config": enc.config(), "space": enc.space,
                       "dim": enc.dim, "weights": self._towers.fingerprint()}
            blob = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
            self._key = hashlib.sha256(blob).hexdigest()[:24]
        return self._key

    @property
    def path(self) -> Path:
        return self.root / self.key()

    def state(self) -> str:
        """``unsupported``, ``missing``, ``failed`` (export refused for this key) or ``ready``."""
        if not self.supported:
            return "unsupported"
        meta = self._meta()
        if meta is None:
            return "missing"
        return "failed" if meta.get("failed") else "ready"

    def _meta(self) -> dict[str, Any] | None:
        """This key's ``meta.json``; None when there is none or it is damaged (then removed)."""
        f = self.path / META
        try:
            meta = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.discard()
            return None
        if not isinstance(meta, dict) or meta.get("key") != self.key() or meta.get("format") != FORMAT:
            self.discard()
            return None
        return meta

    def load(self) -> OnnxQueryEncoder | None:
        """The torch-free query encoder when the cache is ready, else None. Files are verified as read."""
        if not self.supported:
            return None
        meta = self._meta()
        if meta is None or meta.get("failed") or not isinstance(meta.get("files"), dict):
            return None
        assert self._towers is not None
        fast = self._towers.load(_Files(self.path, meta["files"], self.discard), meta.get("spec") or {})
        return fast if isinstance(fast, OnnxQueryEncoder) else None

    def discard(self) -> None:
        """Remove this key's folder (damaged or unwanted); the next build writes it again."""
        shutil.rmtree(self.path, ignore_errors=True)

    def build(self) -> OnnxQueryEncoder | None:
        """Export, check and install the towers (loads the torch model); returns the query encoder, or
        None when the encoder's towers cannot be exported faithfully (recorded, not retried)."""
        if not self.supported:
            return None
        assert self._towers is not None
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{self.key()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        meta: dict[str, Any] = {"format": FORMAT, "key": self.key(), "model": self.encoder.name,
                                "created": time.time()}
        try:
            try:
                meta["spec"] = self._towers.export(tmp)
                meta["files"] = {p.name: {"size": len(b), "crc32": _crc(b)}
                                 for p in sorted(tmp.iterdir()) for b in [p.read_bytes()]}
                fast = self._towers.load(_Files(tmp, meta["files"], lambda: None), meta["spec"])
                verify(fast, self._towers.reference())
            except (ModelError, ImportError) as e:  # not exportable as it is: remember, do not retry
                for p in tmp.iterdir():
                    p.unlink()
                meta = {**meta, "failed": str(e), "files": {}}
            (tmp / META).write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
            self._install(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.load()

    def _install(self, tmp: Path) -> None:
        try:
            os.rename(tmp, self.path)
        except OSError:  # another process installed this key first (or a damaged folder is in the way)
            if self._meta() is None:
                self.discard()
                os.rename(tmp, self.path)
        for other in self.root.iterdir():  # caches of earlier models or weights
            if other.name != self.key() and not other.name.startswith(".tmp-"):
                shutil.rmtree(other, ignore_errors=True)


def probe_images() -> list[Any]:
    """Three deterministic RGB images (a gradient, noise, a wide strip) for checking image towers."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    grad = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256))], -1)
    noise = rng.integers(0, 256, (300, 200, 3))
    strip = rng.integers(0, 256, (60, 400, 3))
    return [Image.fromarray(np.asarray(a, dtype=np.uint8)) for a in (grad, noise, strip)]


def verify(fast: OnnxQueryEncoder, model: Encoder) -> None:
    """Raise :class:`ModelError` unless ``fast`` embeds the probes as ``model`` does (query role)."""
    if fast.has_tower(Modality.TEXT):
        texts = list(PROBE_TEXTS)
        check_close("text", fast.encode_text(texts, role=Role.QUERY), model.encode_text(texts, role=Role.QUERY))
    if fast.has_tower(Modality.IMAGE):
        pre = model.image_preprocessor()
        pixels = np.stack([pre(im) for im in probe_images()]).astype(np.float32)
        check_close("image", fast.encode_pixels(pixels, role=Role.QUERY), model.encode_pixels(pixels, role=Role.QUERY))
