"""Dataset loaders: local copies of standard evaluation sets into one :class:`EvalDataset` form."""

from __future__ import annotations

from omniret.eval.datasets.base import EvalDataset, EvalDoc, EvalQuery, Task
from omniret.eval.datasets.registry import entries, formats, get_loader, load_dataset

__all__ = [
    "EvalDataset",
    "EvalDoc",
    "EvalQuery",
    "Task",
    "entries",
    "formats",
    "get_loader",
    "load_dataset",
]
