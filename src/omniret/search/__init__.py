"""Deprecated alias of :mod:`omniret.methods` (the pure ranking methods), kept for one release.

``import omniret.search.hubness`` still works and gives :mod:`omniret.methods.hubness`, with a
``DeprecationWarning``; import from :mod:`omniret.methods` instead. Nothing inside omniret imports
this package.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings

import omniret.methods as _methods

warnings.warn("omniret.search is now omniret.methods; import from omniret.methods (the alias goes in the next release)",
              DeprecationWarning, stacklevel=2)

for _info in pkgutil.iter_modules(_methods.__path__):
    _mod = importlib.import_module(f"omniret.methods.{_info.name}")
    sys.modules[f"{__name__}.{_info.name}"] = _mod
    globals()[_info.name] = _mod
