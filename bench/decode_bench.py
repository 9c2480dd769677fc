"""Decode throughput of the ingest pipeline alone (no encoder): ``decode_stream`` over JPEG photos.

    python bench/decode_bench.py --n 192 --workers 1 2 --repeat 3

Writes the photos of ``bench/ingest_bench.py`` (800×600 JPEG crops of the scikit-image / scikit-learn
samples), then times ``omniret.ingest.run.decode_stream`` with the offline model's preprocessing
(hash, JPEG draft decode, resize, crop, normalise) for each worker count, files/s. Run it with
``PYTHONPATH`` pointing at two source trees to compare two decode engines side by side (the script
only uses ``decode_stream``'s public signature).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from ingest_bench import make_photos

    from omniret.encoders.offline import OfflineEncoder
    from omniret.ingest.media import MediaConfig
    from omniret.ingest.run import decode_stream
    from omniret.ingest.work import DEFERRED_HASH, DecodeConfig, DecodeTask
    from omniret.items import Modality

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    enc = OfflineEncoder()
    config = DecodeConfig(preprocess=enc.image_preprocessor(), target_size=enc.image_size, max_pixels=None,
                          chunk_chars=800, chunk_overlap=150, media=MediaConfig())
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.n, 800)
        tasks = [DecodeTask(str(p), Modality.IMAGE, p.stat().st_size, p.stat().st_mtime_ns, DEFERRED_HASH)
                 for p in paths]
        for w in args.workers:
            rates = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = list(decode_stream(tasks, config, w))
                rates.append(len(out) / (time.perf_counter() - t0))
                assert all(d.error is None for d in out), [d.error for d in out if d.error][:3]
            print(f"workers {w}: {statistics.median(rates):.1f} files/s (runs: {', '.join(f'{r:.1f}' for r in rates)})")


if __name__ == "__main__":
    main()
