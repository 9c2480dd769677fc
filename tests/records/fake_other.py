"""The fake encoder under another space id (an index of "another model" for mismatch tests)."""

from __future__ import annotations

from typing import Any

from fakes import FakeEncoder


class OtherFake(FakeEncoder):
    name = "fake-other"
    space = "fake-other-64"


def create(rest: str = "", **kwargs: Any) -> OtherFake:
    return OtherFake(**kwargs)
