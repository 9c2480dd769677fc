"""``auto``: the best model that can actually load here.

The open_clip default (``registry.DEFAULT_OPENCLIP``) when its weights are in the local Hugging Face
cache, or when the hub answers within ``timeout`` seconds and the download succeeds; otherwise the
built-in ``offline`` model. ``HF_HUB_OFFLINE=1`` skips the network probe. Returns the concrete encoder
(its ``name`` is the real model, so the manifest records it) and logs the choice on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from omniret.encoders.base import Encoder
from omniret.encoders.registry import DEFAULT_OPENCLIP, split_name
from omniret.encoders.registry import create as create_encoder

log = logging.getLogger(__name__)


def weights_available(model: str = DEFAULT_OPENCLIP, timeout: float = 3.0) -> bool:
    """Whether ``model``'s (an ``openclip:<arch>/<tag>``) weights are cached, or reachable on the hub within
    ``timeout`` seconds and then download. Checks the cache first, then makes one retry-free probe."""
    from huggingface_hub import hf_hub_download

    from omniret.encoders.openclip import cached_file, hub_files, hub_reachable

    arch, _, tag = split_name(model)[1].partition("/")
    found = hub_files(arch, tag)
    if found is None:
        return False
    repo, files = found
    if cached_file(repo, files) is not None:
        return True
    name = hub_reachable(repo, files, timeout)
    if name is None:
        return False
    try:
        hf_hub_download(repo, name)
    except Exception as e:
        log.info("auto: downloading %s/%s failed: %s", repo, name, e)
        return False
    return True


def _announce(message: str) -> None:
    log.info(message)
    print(f"omniret: {message}", file=sys.stderr)


def create(rest: str = "", *, timeout: float = 3.0, **kwargs: Any) -> Encoder:
    """``auto``: the open_clip default if its weights can be had here, else ``offline``."""
    if rest:
        from omniret.errors import ModelError

        raise ModelError(f"'auto' takes no ':...' suffix (got 'auto:{rest}'); name a model directly instead")
    try:
        usable = weights_available(DEFAULT_OPENCLIP, timeout)
    except Exception as e:  # a broken hub client must not stop the offline fallback
        log.info("auto: probing %s failed: %s", DEFAULT_OPENCLIP, e)
        usable = False
    if usable:
        _announce(f"model 'auto' chose {DEFAULT_OPENCLIP} (weights available)")
        return create_encoder(DEFAULT_OPENCLIP, **kwargs)
    _announce(f"model 'auto' chose 'offline': the weights of {DEFAULT_OPENCLIP} are not cached and cannot "
              "be downloaded here (no network?)")
    return create_encoder("offline", **kwargs)
