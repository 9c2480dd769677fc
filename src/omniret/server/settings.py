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
    - ``allowed_hosts``: the ``Host`` header values answered (``*.example.org`` matches its
      subdomains); anything else gets 400, so a web page on a DNS-rebound name cannot talk to the
      server. Empty means any host. :meth:`from_options` defaults it to the loopback names when the
      server binds a loopback address.
    - ``batch_queries``: concurrent searches share encoder calls (queries arriving within
      ``batch_wait_ms`` of each other are embedded in one batch; :meth:`omniret.Index.batch_queries`).
    """

    token: str | None = None
    roots: tuple[str, ...] = ()
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    cors_origins: tuple[str, ...] = ()
    model: str | None = None
    thumb_size: int = 256
    max_k: int = 1000
    allowed_hosts: tuple[str, ...] = ()
    batch_queries: bool = True
    batch_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 8:
            raise OmniretError("the server token must be at least 8 characters; pick a longer --token")
        if self.max_upload_bytes < 1024:
            raise OmniretError(f"max upload size must be at least 1 KiB, got {self.max_upload_bytes} bytes")
        object.__setattr__(self, "roots", tuple(os.path.realpath(r) for r in self.roots))
        hosts = tuple(dict.fromkeys(normalise_host(h) for h in self.allowed_hosts))
        for h in hosts:
            if not h or any(c in h for c in "/ @") or "*" in h.lstrip("*."):
                raise OmniretError(f"--allow-host {h!r} is not a host name; give a name like 'photos.lan', "
                                   "an address, or '*.example.org'")
        object.__setattr__(self, "allowed_hosts", hosts)

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
        bind: str | None = None,
        allow_hosts: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> ServerSettings:
        """Flags first, then ``$OMNIRET_TOKEN``, then defaults. Roots must be existing folders.

        ``bind`` is the address the server listens on: a loopback one adds the loopback names to
        ``allow_hosts``; ``allow_hosts`` containing ``*`` turns the Host check off."""
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
            allowed_hosts=default_hosts(bind, allow_hosts),
        )


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    import ipaddress

    host = normalise_host(host)
    if host in LOOPBACK_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_host(host: str) -> str:
    """Lower case, no brackets around an IPv6 address, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".") if host != "." else host


def default_hosts(bind: str | None, allow_hosts: Sequence[str]) -> tuple[str, ...]:
    """The Host allow-list of a server bound to ``bind``: the loopback names when ``bind`` is loopback,
    plus ``allow_hosts``; empty (any host) when ``*`` is allowed or a non-loopback bind names none."""
    if "*" in allow_hosts:
        return ()
    hosts = list(allow_hosts)
    if bind is not None and is_loopback(bind):
        hosts[:0] = [*LOOPBACK_HOSTS, normalise_host(bind)]
    return tuple(dict.fromkeys(normalise_host(h) for h in hosts))
