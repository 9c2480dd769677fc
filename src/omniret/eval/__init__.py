"""The evaluation harness: metrics, dataset loaders, the method grid runner and its reports.

Owns :mod:`~omniret.eval.metrics` (R@K, mAP@K, nDCG@K, MRR, MdR, skewness), :mod:`~omniret.eval.datasets`
(local copies of standard sets in one form), :mod:`~omniret.eval.prepare` (building judged sets from
data that ships offline), :mod:`~omniret.eval.runner` (index a set once, run each method) and
:mod:`~omniret.eval.report`. A client of the library: may import ``omniret.index`` and everything below
it, never ``server`` or ``cli``; it does not reimplement search.
"""
