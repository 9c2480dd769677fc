"""``upgrade`` refuses a model that cannot embed what the index holds, and ``--abort`` gets an index out of
an upgrade (regression: ``upgrade --to st:<text model>`` on an index with images left it stuck)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from omniret.errors import QueryError
from omniret.index import Index
from omniret.tasks.upgrade import abort_upgrade, fit_upgrade, resume_upgrade


@pytest.fixture
def index(tmp_path: Path, mixed_corpus: Path) -> Iterator[Index]:
    idx = Index.open(tmp_path / "idx", model="fake")
    idx.add(mixed_corpus, workers=0)
    yield idx
    idx.close()


def test_a_text_only_model_is_refused_on_an_index_with_images(index: Index) -> None:
    before = index.store.manifest()
    with pytest.raises(QueryError, match=r"'fake2text' cannot embed image.*12 image item"):
        fit_upgrade(index, "fake2text", pairs=50)
    assert index.store.manifest() == before and not (Path(index.path) / "upgrade").exists()


def test_abort_a_mapped_upgrade(index: Index) -> None:
    before = index.store.manifest()
    fit_upgrade(index, "fake2", pairs=50)
    out = abort_upgrade(index)
    assert out["aborted"] == "fake2" and out["state"] == "mapped" and out["dropped_vectors"] == 0
    m = index.store.manifest()
    assert m["encoder"] == before["encoder"] and m["upgrade"]["state"] == "aborted"
    assert not list((Path(index.path) / "upgrade").glob("*.npy"))
    path = index.path
    index.close()
    with Index.open(path) as again:  # queries are the old model's again
        assert again.encoder.name == "fake" and again.search("river stone", k=1)
        with pytest.raises(QueryError, match="no model upgrade in progress"):
            abort_upgrade(again)
        with pytest.raises(QueryError, match="no model upgrade in progress"):
            resume_upgrade(again)
        fit_upgrade(again, "fake2", pairs=50)  # a new upgrade can start
        assert again.store.manifest()["upgrade"]["state"] == "mapped"


def test_abort_while_reembedding_drops_the_new_vectors(index: Index) -> None:
    fit_upgrade(index, "fake2", pairs=50)
    resume_upgrade(index, limit=40, commit_every=16)
    n = index.store.count()
    out = abort_upgrade(index)
    assert out["state"] == "reembedding" and out["dropped_vectors"] == 40
    ids = [it.id for it in index.store.iter_items()]
    assert np.isnan(index.store.vectors("fake2-48", ids)).all() if "fake2-48" in index.store.spaces() else True
    assert index.store.count() == n and not np.isnan(index.store.vectors("fake-64", ids[:5])).all()


def test_cli_refuses_and_aborts(index: Index) -> None:
    from omniret.cli.main import EXIT_USER_ERROR, cli

    path = index.path
    index.close()

    def run(*args: str) -> tuple[int, str, str]:
        r = CliRunner().invoke(cli, ["--index", path, *args], catch_exceptions=False)
        return r.exit_code, r.stdout, r.stderr

    code, _, err = run("upgrade", "--to", "fake2text")
    assert code == EXIT_USER_ERROR and "cannot embed image" in err and "--abort" not in err
    code, _, err = run("upgrade", "--abort")
    assert code == EXIT_USER_ERROR and "no model upgrade in progress" in err
    assert run("upgrade", "--to", "fake2", "--pairs", "50")[0] == 0
    code, out, _ = run("--json", "upgrade", "--abort")
    assert code == 0 and json.loads(out)["aborted"] == "fake2"
    code, out, _ = run("upgrade", "--abort", "--resume")
    assert code == EXIT_USER_ERROR


def test_an_index_stuck_before_the_guard_can_abort(index: Index) -> None:
    """An index mapped to a text-only model by an older omniret: refitting says how to get out, abort does."""
    import time

    from omniret.encoders import registry
    from omniret.tasks.upgrade import _save_map

    new = registry.create("fake2text")
    rel = _save_map(index.files, np.eye(48, 64, dtype=np.float32), new.space)
    m = index.store.manifest()
    index.store.set_manifest({**m, "upgrade": {"to": "fake2text", "config": {}, "method": "lstsq", "dim": 48,
                                               "new_space": new.space, "old_dim": 64, "state": "mapped",
                                               "file": rel, "created": time.time()}})
    path = index.path
    index.close()
    with Index.open(path) as stuck:
        with pytest.raises(QueryError, match="upgrade --abort"):
            fit_upgrade(stuck, "fake2text")
        assert abort_upgrade(stuck)["aborted"] == "fake2text"
    with Index.open(path) as again:
        assert again.encoder.name == "fake"
