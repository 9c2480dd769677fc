"""Fetching the content of ``http(s)://`` URLs (manifest rows, records), with size and time limits.

One :class:`httpx.Client` per process (keep-alive across rows). A fetch fails with a
:class:`~omniret.errors.MediaError` naming the reason — HTTP status, timeout, too large, refused
scheme — so one bad row becomes one reported failure, never a stopped run. The body is streamed and
cut off as soon as it passes ``max_bytes``, so a huge or endless response costs at most that much.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from omniret.errors import MediaError

_SCHEMES = ("http://", "https://")
_local = threading.local()


@dataclass(frozen=True)
class FetchLimits:
    """How far a fetch may go: ``max_bytes`` of body, ``timeout`` seconds in all (connect, each read and
    the whole transfer), redirects followed up to ``max_redirects``."""

    max_bytes: int = 50 * 1024 * 1024
    timeout: float = 30.0
    max_redirects: int = 5


def is_url(value: Any) -> bool:
    """Whether ``value`` is an ``http://`` or ``https://`` URL string."""
    return isinstance(value, str) and value[:8].lower().startswith(_SCHEMES)


def _client(limits: FetchLimits) -> Any:
    import httpx

    key = (limits.timeout, limits.max_redirects)
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "key", None) != key:
        client = httpx.Client(timeout=httpx.Timeout(limits.timeout), follow_redirects=True,
                              max_redirects=limits.max_redirects, headers={"User-Agent": "omniret"})
        _local.client, _local.key = client, key
    return client


def fetch(url: str, limits: FetchLimits = FetchLimits()) -> bytes:  # noqa: B008 - frozen default
    """The body of ``url`` (``http``/``https`` only), or a :class:`MediaError` with the reason."""
    import time

    import httpx

    if not is_url(url):
        raise MediaError(str(url), "only http:// and https:// URLs are fetched")
    deadline = time.monotonic() + limits.timeout
    try:
        with _client(limits).stream("GET", url) as r:
            if r.status_code >= 400:
                raise MediaError(url, f"HTTP {r.status_code} {r.reason_phrase}".rstrip())
            declared = r.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
                raise MediaError(url, f"too large: {int(declared):,} bytes declared, the limit is "
                                      f"{limits.max_bytes:,} (raise fetch_max_bytes to allow it)")
            parts, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise MediaError(url, f"too large: over the limit of {limits.max_bytes:,} bytes "
                                          "(raise fetch_max_bytes to allow it)")
                if time.monotonic() > deadline:
                    raise MediaError(url, f"timed out after {limits.timeout:g} s (raise fetch_timeout)")
                parts.append(chunk)
    except httpx.TimeoutException as e:
        raise MediaError(url, f"timed out after {limits.timeout:g} s (raise fetch_timeout)") from e
    except httpx.TooManyRedirects as e:
        raise MediaError(url, f"more than {limits.max_redirects} redirects") from e
    except httpx.HTTPError as e:
        raise MediaError(url, f"fetch failed ({type(e).__name__}: {e})") from e
    body = b"".join(parts)
    if not body:
        raise MediaError(url, "empty response (0 bytes)")
    return body
