"""The small error hierarchy. Every message names the bad thing and how to fix it."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence


class OmniretError(Exception):
    """Base class of every error omniret raises on purpose."""


class MediaError(OmniretError):
    """A file could not be read or decoded (corrupt, truncated, unsupported, too large...)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


class ModelError(OmniretError):
    """A model could not be found, loaded, or does not support what was asked of it."""


class ModelMismatchError(ModelError):
    """The index was built with a different model than the one requested."""


class StoreError(OmniretError):
    """The index on disk is missing, locked, corrupt, or was asked something it cannot do."""


class QueryError(OmniretError):
    """A search request is malformed (empty query, unknown option, bad filter...)."""


class StoreWarning(UserWarning):
    """Something about the index on disk needs the user's attention but does not stop the command
    (a lost ``-wal`` file, an index opened read-only whose WAL cannot be read)."""


def require_extra(command: str, extra: str, modules: Sequence[str]) -> None:
    """Raise an :class:`OmniretError` naming the pip extra to install when one of ``modules`` (top-level
    import names) is missing, before ``command`` fails deep inside with a bare ``ModuleNotFoundError``."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise OmniretError(f"{command} needs {', '.join(missing)}, which this installation lacks: "
                           f"pip install 'omniret[{extra}]'")
