"""Regenerate the class-name embedding tables the offline bridge ships in ``src/omniret/data/``.

    python scripts/offline_class_tables.py            # every text model
    python scripts/offline_class_tables.py e5         # one

Each table is a pure function of the text model's weights and the ImageNet label list (the tests
recompute it and compare); shipping it saves every process the 5,000 prompt embeddings (27,000 for
``e5``'s six-language names, which need ``pip install --no-deps clip_benchmark`` to recompute).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from omniret.encoders import offline as off


def main(texts: list[str]) -> None:
    for text in texts or list(off.TEXT_MODELS):
        enc = off.OfflineEncoder(text=text, device="cpu")
        t = time.time()
        labels = off.DEFAULT_LABELS_FOR[text]
        table = off.class_embeddings(lambda p, e=enc: e._embed_text(p, off.Role.DOCUMENT), labels,
                                     off.DEFAULT_TEMPLATES, use_shipped=False, text=text)
        out = off.shipped_class_embeddings_file(labels, off.DEFAULT_TEMPLATES, text)
        np.save(out, table.astype(np.float16))
        print(f"{text}: {table.shape} -> {out} ({time.time() - t:.0f}s)")


if __name__ == "__main__":
    main(sys.argv[1:])
