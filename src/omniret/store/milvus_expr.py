"""Pieces of the Milvus backend that need no server: location parsing and filter → Milvus expressions.

Location syntax (see :mod:`omniret.store.milvus`):

- ``milvus-lite:///abs/path/index.db`` or ``milvus-lite://rel/path/index.db``: a Milvus Lite file;
  the side state (manifest, sources, errors, commit log) is ``<file>.state.sqlite`` next to it.
- ``milvus://host:port/collection`` (``milvus+https://`` for TLS): a Milvus server; ``collection`` is
  the name prefix of this index's collections (default ``omniret``). The side state is a local SQLite
  file given by the ``state_path`` option (default ``./<collection>.omniret-state.sqlite``).

:func:`filter_expr` translates a :class:`~omniret.store.base.Filter` into a Milvus boolean expression.
Two conditions cannot be expressed exactly in Milvus: ``fnmatch`` globs (Milvus ``like`` has only
``%``) and type-strict JSON equality (Milvus compares ``true == 1``). For those the expression is a
superset (the glob's literal prefix as ``like "prefix%"``, the JSON equality as Milvus reads it) and
:func:`needs_check` says that every candidate must be re-checked in Python with :func:`item_matches`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from omniret.errors import QueryError, StoreError
from omniret.items import Item, Modality, is_utf8
from omniret.store.base import Filter

#: Milvus text must be valid UTF-8; a non-UTF-8 file name (lone surrogates in Python, see
#: omniret.items.path_bytes) is stored with each surrogate as this noncharacter + 4 hex digits
_ESC = "\ufdd0"
_UNESC = re.compile("\ufdd0(\ufdd0|[0-9a-f]{4})")


def to_milvus_text(text: str) -> str:
    """``text`` as Milvus can store it: unchanged when valid UTF-8; else each lone surrogate becomes U+FDD0
    and its code in 4 hex digits (and a literal U+FDD0 is doubled). The mapping is character by character, so
    a path's valid prefix stays a prefix (``like "prefix%"`` still finds it). U+FDD0 is a Unicode
    noncharacter ("for internal use"): a valid string that holds one followed by 4 hex digits is the only one
    :func:`from_milvus_text` would misread."""
    if is_utf8(text):
        return text
    return "".join(f"{_ESC}{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else _ESC * 2 if c == _ESC else c
                   for c in text)


def from_milvus_text(text: str) -> str:
    """Inverse of :func:`to_milvus_text`."""
    if _ESC not in text:
        return text
    return _UNESC.sub(lambda m: _ESC if m.group(1) == _ESC else chr(int(m.group(1), 16)), text)


def map_strings(value: Any, fn: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with ``fn`` applied to every string in it, keys too."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k) if isinstance(k, str) else k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, fn) for v in value]
    return value


@dataclass(frozen=True)
class MilvusLocation:
    """Where a Milvus-backed index lives: the client URI, the collection prefix, the side-state file."""

    uri: str
    prefix: str
    state_path: str
    lite: bool


def parse_location(location: str, *, collection: str | None = None, state_path: str | None = None) -> MilvusLocation:
    """Parse ``milvus-lite://…`` / ``milvus://host:port/collection`` (see the module docstring)."""
    scheme, sep, rest = location.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("milvus-lite", ""):
        path = rest if sep else location
        if not path or path.endswith("/"):
            raise StoreError(f"{location!r}: give a Milvus Lite file, e.g. milvus-lite:///data/index.db")
        if not path.endswith(".db"):
            raise StoreError(f"{location!r}: a Milvus Lite file name must end in .db (e.g. {path}.db)")
        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return MilvusLocation(path, _check_prefix(collection or "omniret"), state_path or path + ".state.sqlite", True)
    if scheme not in ("milvus", "milvus+http", "milvus+https"):
        raise StoreError(f"{location!r}: unknown Milvus scheme {scheme!r}; use milvus://host:port/collection "
                         "or milvus-lite:///path/file.db")
    hostport, _, coll = rest.partition("/")
    if not hostport:
        raise StoreError(f"{location!r}: give a host, e.g. milvus://localhost:19530/my_index")
    proto = "https" if scheme.endswith("https") else "http"
    prefix = _check_prefix(collection or coll.strip("/") or "omniret")
    return MilvusLocation(f"{proto}://{hostport}", prefix, state_path or f"./{prefix}.omniret-state.sqlite", False)


def _check_prefix(prefix: str) -> str:
    ok = prefix and (prefix[0].isalpha() or prefix[0] == "_") and all(c.isalnum() or c == "_" for c in prefix)
    if not ok or len(prefix) > 180:
        raise StoreError(f"collection name {prefix!r}: use letters, digits and _ (not starting with a digit)")
    return prefix


def lit(value: str) -> str:
    """A Milvus string literal."""
    return json.dumps(str(value), ensure_ascii=False)


def str_list(values: Any) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


def glob_prefix(pattern: str) -> str:
    """The literal text before the first wildcard of an ``fnmatch`` pattern ('' if none is usable)."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    prefix = pattern[:cut]
    return "" if any(c in prefix for c in '%_\\"') else prefix


def _metadata_expr(key: str, value: Any) -> str | None:
    """Milvus JSON equality for one metadata key (``None`` where only Python can decide)."""
    if '"' in key or "\\" in key:
        raise QueryError(f"metadata filter key {key!r}: keys with quotes or backslashes are not supported")
    path = f"metadata[{lit(key)}]"
    if isinstance(value, bool):
        return f"{path} == {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"{path} == {lit(value)}"
    if isinstance(value, (int, float)):
        return f"{path} == {value!r}"
    if value is None or isinstance(value, (list, dict)):
        return None
    raise QueryError(f"metadata filter {key!r}: cannot compare a {type(value).__name__}; use a string, number, "
                     "bool, None, list or dict")


def filter_expr(where: Filter | None, *, max_seq: int) -> str:
    """A Milvus expression true for committed rows (``seq <= max_seq``) that may match ``where``."""
    conds = [f"seq <= {int(max_seq)}"]
    if where is None:
        return conds[0]
    if where.modalities is not None:
        conds.append(f"modality in {str_list(sorted(Modality.parse(m).value for m in where.modalities))}")
    if where.path_glob is not None and glob_prefix(where.path_glob):
        conds.append(f"uri like {lit(to_milvus_text(glob_prefix(where.path_glob)) + '%')}")
    if where.mtime_min is not None:
        conds.append(f"mtime >= {float(where.mtime_min)!r}")
    if where.mtime_max is not None:
        conds.append(f"mtime <= {float(where.mtime_max)!r}")
    for key, value in where.metadata.items():
        expr = _metadata_expr(str(key), value)
        if expr is not None:
            conds.append(expr)
    if where.parent_id is not None:
        conds.append(f"parent_id == {lit(where.parent_id)}")
    if where.ids is not None:
        conds.append(f"id in {str_list(sorted(where.ids))}")
    return " and ".join(conds)


def needs_check(where: Filter | None) -> bool:
    """Whether candidates of :func:`filter_expr` must be re-checked with :func:`item_matches`."""
    return where is not None and (where.path_glob is not None or bool(where.metadata))


def item_matches(item: Item, where: Filter) -> bool:
    """The exact (Python) reading of the conditions :func:`filter_expr` only approximates."""
    if where.path_glob is not None and not fnmatch.fnmatchcase(item.uri, where.path_glob):
        return False
    for key, value in where.metadata.items():
        got = item.metadata.get(key, _MISSING)
        if got is _MISSING or got != value or type(got) is not type(value):
            return False
    return True


_MISSING = object()
