"""Models → vectors: the ``Encoder`` contract, one module per backend, and the registry that names them.

Owns :mod:`~omniret.encoders.base` (``Encoder``, image preprocessing, ``PageLayout``),
:mod:`~omniret.encoders.registry` (string keys such as ``offline``, ``openclip:…``, ``st:…``, ``hf:…``,
``colpali:…``, entry points) and the backends (open_clip, transformers, sentence-transformers, the
offline ConSE bridge, ColPali/ColQwen2). Backends import their frameworks lazily. May import only
``items``, ``threads`` and ``errors``; encoders never touch storage.
"""
