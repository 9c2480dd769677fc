"""Server settings: one frozen value, parsed once at the edge (flags ← environment ← defaults)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omniret.errors import OmniretError

TOKEN_ENV = "OMNIRET_TOKEN"
DEFAULT_MAX_UPLOAD_MB = 50.0


@dataclass(frozen=True)
class ServerSettings:
    """What the HTTP layer needs to know; never mutated after :func:`create_app`.

    - ``token``: bearer token for write routes (``POST /items``, ``DELETE /items/{id}``,
      ``POST /classify`` with ``write``); ``None`` disables those routes (403).
    - ``roots``: server-side folders under which ``POST /items`` may add files by path; empty
      means adding by path is disabled (uploads still work with a token).
    - ``max_upload_bytes``: the largest request body accepted; bigger ones get 413 before being read.
    - ``cors_origins``: origins allowed by CORS; empty means CORS is off (same origin only).
    - ``model``: the model of a new index (``None``: the index must exist already).
    """

    token: str | None = None
    roots: tuple[str, ...] = ()
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    cors_origins: tuple[str, ...] = ()
    model: str | None = None
    thumb_size: int = 256
    max_k: int = 1000

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 8:
            raise OmniretError("the server token must be at least 8 characters; pick a longer --token")
        if self.max_upload_bytes < 1024:
            raise OmniretError(f"max upload size must be at least 1 KiB, got {self.max_upload_bytes} bytes")
        object.__setattr__(self, "roots", tuple(os.path.realpath(r) for r in self.roots))

    @property
    def writes_enabled(self) -> bool:
        return self.token is not None

    @classmethod
    def from_options(
        cls,
        *,
        token: str | None = None,
        roots: Sequence[str] = (),
        max_upload_mb: float | None = None,
        cors_origins: Sequence[str] = (),
        model: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ServerSettings:
        """Flags first, then ``$OMNIRET_TOKEN``, then defaults. Roots must be existing folders."""
        env = os.environ if env is None else env
        for r in roots:
            if not os.path.isdir(r):
                raise OmniretError(f"--root {r!r} is not an existing folder; give a folder files may be added from")
        mb = DEFAULT_MAX_UPLOAD_MB if max_upload_mb is None else max_upload_mb
        if mb <= 0:
            raise OmniretError(f"--max-upload-mb must be positive, got {mb}")
        return cls(
            token=token or env.get(TOKEN_ENV) or None,
            roots=tuple(roots),
            max_upload_bytes=int(mb * 1024 * 1024),
            cors_origins=tuple(cors_origins),
            model=model,
        )
