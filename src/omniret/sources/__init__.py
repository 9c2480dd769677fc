"""Sources: walking files, folders and globs; content hashing; change detection. No decoding here.
May import ``store`` (source states), ``media`` (safe file reads, the document formats' extensions) and
the core; never decodes.
"""

from __future__ import annotations

from omniret.sources.changes import Changes, detect_changes
from omniret.sources.hashing import hash_bytes, hash_file
from omniret.sources.walk import (
    MODALITY_BY_EXTENSION,
    FileInfo,
    Skipped,
    WalkResult,
    modality_for,
    walk,
)

__all__ = [
    "MODALITY_BY_EXTENSION",
    "Changes",
    "FileInfo",
    "Skipped",
    "WalkResult",
    "detect_changes",
    "hash_bytes",
    "hash_file",
    "modality_for",
    "walk",
]
