"""One local 2-CPU Ray instance for every Ray test in this folder (starting Ray costs 7-9 s here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """A local Ray with the test helper folders (crash_encoder, media2 builders) on the workers' path."""
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(HERE), str(HERE.parent), str(HERE.parent / "media2"),
                            os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()
