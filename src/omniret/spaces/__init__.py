"""Vector spaces beside the index's main one: audio (a CLAP model) and PDF pages (a multi-vector model).

Owns :mod:`~omniret.spaces.audio` (resolving, recording and querying the audio model),
:mod:`~omniret.spaces.pages` (the ColPali/ColQwen2 page space: page images, token matrices, MaxSim
search, matched regions) and :mod:`~omniret.spaces.multivector` (the on-disk multi-vector store with
MUVERA candidates). May import ``sources``, ``encoders``, ``store``, ``media``, ``methods`` and the
core; never ``query``, ``ingest``, ``tasks`` or ``index``.
"""
