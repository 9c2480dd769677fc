"""Adding files to an index: walk → decode (threads) → encode (batched) → atomic commits.

Owns the ``add`` pipeline: :mod:`~omniret.ingest.work` (the shared types: ``IngestOptions``,
``AddReport``, decode tasks and decoded files, the items a file becomes), :mod:`~omniret.ingest.run`
(the single-machine run), :mod:`~omniret.ingest.media` (audio, video and PDF payloads and their
items), :mod:`~omniret.ingest.structured` (HTML, Office, EPUB, OpenDocument and e-mail files as sections,
slides, sheets and attachments), :mod:`~omniret.ingest.gpu` (nvJPEG decode on a GPU) and :mod:`~omniret.ingest.ray` (the same
steps on Ray Data). May import the layers below it (``spaces``, ``sources``, ``encoders``, ``store``,
``media``, ``methods``, ``items``, ``errors``, ``threads``); never ``query``, ``tasks`` or ``index``.
"""
