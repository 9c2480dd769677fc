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


#: modules omniret imports on first use -> (their pip package, the omniret extra that brings them)
OPTIONAL_MODULES = {
    "pypdfium2": ("pypdfium2", "media"), "av": ("av", "media"), "soundfile": ("soundfile", "media"),
    "rapidocr_onnxruntime": ("rapidocr-onnxruntime", "media"), "cairosvg": ("cairosvg", "media"),
    "transformers": ("transformers", "media"), "pyarrow": ("pyarrow", "data"), "datasets": ("datasets", "data"),
    "ranx": ("ranx", "eval"), "matplotlib": ("matplotlib", "eval"), "uvicorn": ("uvicorn", "server"),
    "fastapi": ("fastapi", "server"), "mcp": ("mcp", "mcp"), "ray": ("ray[data]", "ray"),
    "pymilvus": ("pymilvus", "milvus"), "langchain_core": ("langchain-core", "langchain"),
    "llama_index": ("llama-index-core", "llamaindex"),
}


def missing_module_hint(e: BaseException) -> str | None:
    """For a ``ModuleNotFoundError`` of an optional dependency: what to install (else ``None``)."""
    if not isinstance(e, ModuleNotFoundError):
        return None
    top = (e.name or "").split(".")[0]
    if top not in OPTIONAL_MODULES:
        return None
    package, extra = OPTIONAL_MODULES[top]
    return f"needs the Python package {package}, which is not installed: pip install {package} " \
           f"(or pip install 'omniret[{extra}]')"


def is_environment_failure(reason: str) -> bool:
    """A recorded failure that came from this installation, not from the file: a missing optional library
    (its message carries the ``pip install`` fix). Such files are decoded again by the next ``add``."""
    return "pip install" in reason
