"""Fast queries with the real offline model (issue 14.2): the ONNX query towers next to the index give
the same hits as the model loaded through torch, and a CLI search with them never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import omniret
from omniret.cli.demo import write_samples

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")

QUERIES = ["a cat", "a cup of coffee", "a rocket launch", "an astronaut in a space suit", "flowers",
           "a temple in china", "a horse", "pasta with tomato sauce", "motorcycle"]
IMAGES = ["chelsea.png", "astronaut.png", "rocket.png", "china.jpg", "coffee.png"]
#: packages a cached text search must not load
HEAVY = ("torch", "transformers", "sentence_transformers", "scipy", "sklearn", "PIL", "efficientnet_lite_pytorch")


def _key(hits: list[omniret.Hit]) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("qcache")
    samples = root / "samples"
    write_samples(samples)
    idx = omniret.open(str(root / "idx"), model="offline", device="cpu")
    assert idx.add(str(samples), workers=0).failed == []
    assert idx.query_cache().state() == "missing"
    text = {q: _key(idx.search(q, k=12)) for q in QUERIES}  # through torch: no cache yet
    image = {n: _key(idx.search(image=str(samples / n), k=12)) for n in IMAGES}
    assert idx._query_towers() is None
    assert idx.prepare_queries() == "ready"
    idx.close()
    return {"root": root, "samples": samples, "text": text, "image": image}


def _same_ranking(got: list[tuple[str, float]], want: list[tuple[str, float]], tol: float = 1e-4) -> None:
    """Same scores within ``tol`` rank by rank, and the same ids except where neighbours tie within ``tol``."""
    assert len(got) == len(want)
    for (_, gs), (_, ws) in zip(got, want, strict=True):
        assert abs(gs - ws) <= tol, (got, want)
    for r, (gi, _) in enumerate(got):
        tied = {wi for wi, ws in want if abs(ws - want[r][1]) <= 2 * tol}
        assert gi in tied, (r, got, want)


def test_cached_text_towers_give_the_same_hits(offline: dict) -> None:
    idx = omniret.open(str(offline["root"] / "idx"))
    for q, want in offline["text"].items():
        _same_ranking(_key(idx.search(q, k=12)), want)
    fast = idx._query_towers()
    assert fast is not None and set(fast._towers) == {"text"}  # the image graph was never read
    idx.close()


def test_cached_image_tower_gives_the_same_hits(offline: dict) -> None:
    idx = omniret.open(str(offline["root"] / "idx"))
    for name, want in offline["image"].items():
        _same_ranking(_key(idx.search(image=str(offline["samples"] / name), k=12)), want)
    assert set(idx._query_towers()._towers) == {"image"}
    idx.close()


SCRIPT = """
import json, sys
from omniret.cli.main import cli
sys.argv = ["omniret", "--index", {index!r}, "--json", "search", {query!r}, "-k", "12"]
try:
    cli(prog_name="omniret")
except SystemExit as e:
    code = e.code
print(json.dumps({{"loaded": sorted(m for m in {heavy!r} if m in sys.modules), "code": code}}))
"""


def _cli(index: Path, query: str) -> tuple[list[dict], dict, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(index=str(index), query=query, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=1500, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return lines[:-1], lines[-1], proc.stderr


def test_cli_text_search_never_imports_torch(offline: dict) -> None:
    hits, status, err = _cli(offline["root"] / "idx", "a cup of coffee")
    assert status == {"loaded": [], "code": 0}, err
    _same_ranking([(h["id"], h["score"]) for h in hits], offline["text"]["a cup of coffee"])


def test_cli_prepares_the_cache_once(offline: dict, tmp_path: Path) -> None:
    """An index made by the library has no cache: the first CLI search answers through the model, then
    writes it (saying so on stderr); the next one runs without torch."""
    import shutil

    index = tmp_path / "idx"
    shutil.copytree(offline["root"] / "idx", index)
    shutil.rmtree(index / "query-cache")
    first, status, err = _cli(index, "a cat")
    assert status["code"] == 0 and "torch" in status["loaded"] and "preparing fast searches" in err
    second, status, err = _cli(index, "a cat")
    assert status == {"loaded": [], "code": 0} and "preparing" not in err
    _same_ranking([(h["id"], h["score"]) for h in second], [(h["id"], h["score"]) for h in first])
