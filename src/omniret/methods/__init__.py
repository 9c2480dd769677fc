"""The research methods as pure functions of numpy arrays: arrays in, arrays out, no IO, no objects.

Owns the formulas of ``specs/algorithms.md``, one module per family: hubness corrections
(:mod:`~omniret.methods.hubness`: IS, QB-Norm, DBNorm), modality-gap correction and T-norm
(:mod:`~omniret.methods.gap`), score fusion (:mod:`~omniret.methods.fusion`), composed queries
(:mod:`~omniret.methods.composed`), late interaction and MUVERA (:mod:`~omniret.methods.late_interaction`,
:mod:`~omniret.methods.muvera`), zero-shot classification and prompts (:mod:`~omniret.methods.classify`,
:mod:`~omniret.methods.prompts`), upgrade maps (:mod:`~omniret.methods.upgrade`), slot-preserving
re-ranking (:mod:`~omniret.methods.rerank`) and MMR diversification (:mod:`~omniret.methods.diversity`). Each is checked
against the spec's test vectors. May import only ``omniret.errors`` (and numpy/scipy).
"""
