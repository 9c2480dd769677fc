"""Jobs over a whole index, built on the pure methods: zero-shot classification and model upgrades.

Owns :mod:`~omniret.tasks.classify` (labels for indexed items or files, written into metadata on
request) and :mod:`~omniret.tasks.upgrade` (fit a map from a new model into the index's space, then
re-embed in resumable commits). Each takes the index's parts (store, encoders, folder) from the
caller; may import ``query``, ``ingest`` and the layers below them, never ``index`` or the apps.
"""
