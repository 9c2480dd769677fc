"""Answering a search: options and filters, candidates, ranking stages, routing, statistics, hits.

Owns everything between an embedded query and a ranked list: :mod:`~omniret.query.options` (the
frozen ``SearchOptions`` with its ``Filters`` and ``Ranking`` groups), :mod:`~omniret.query.args`
(user arguments → store filters, query images, captions), :mod:`~omniret.query.pipeline` (ANN
candidates and the stages), :mod:`~omniret.query.routing` (which spaces, which granularity, score
merging), :mod:`~omniret.query.stats` (per-space statistics the stages read) and
:mod:`~omniret.query.hits` (ids → ``Hit``, roll-ups). May import ``spaces`` and the layers below it;
never ``ingest``, ``tasks`` or ``index`` (the facade passes what it needs).
"""
