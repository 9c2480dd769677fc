"""SearchOptions: the grouped form of Index.search's knobs gives the same hits as the flat keywords."""

from __future__ import annotations

from pathlib import Path

import pytest

import omniret
from omniret import Filters, Ranking, SearchOptions
from omniret.errors import QueryError


@pytest.fixture
def idx(tmp_path: Path, corpus: Path) -> omniret.Index:
    index = omniret.open(str(tmp_path / "idx"), model="fake")
    index.add(str(corpus), workers=0)
    index.set_query_bank(["a red square", "green", "a rocket", "pasta with basil", "cats sleeping"])
    return index


def _ids(hits: list[omniret.Hit]) -> list[tuple[str, float]]:
    return [(h.id, round(h.score, 6)) for h in hits]


@pytest.mark.parametrize("knobs", [
    {"k": 3},
    {"k": 2, "modality": "image"},
    {"k": 5, "modality": ["text"], "hubness": "qbnorm"},
    {"k": 4, "gap": "calibrate", "route": "all"},
    {"k": 3, "hybrid": "rrf", "granularity": "parent"},
    {"k": 2, "rollup": True, "path_glob": "*/sub/*"},
])
def test_options_object_equals_flat_keywords(idx: omniret.Index, knobs: dict) -> None:
    flat = idx.search("red", **knobs)
    grouped = idx.search("red", options=SearchOptions.of(**knobs))
    assert flat and _ids(flat) == _ids(grouped)


def test_groups_are_what_the_flat_keywords_fill() -> None:
    o = SearchOptions.of(k=5, modality="image", where={"name": "x"}, hubness="is", candidates=50, rollup=True)
    assert o == SearchOptions(k=5, rollup=True, filters=Filters(modality="image", where={"name": "x"}),
                              ranking=Ranking(hubness="is", candidates=50))


def test_keywords_apply_over_an_options_object(idx: omniret.Index) -> None:
    base = SearchOptions(k=4, filters=Filters(modality="image"))
    assert len(idx.search("red", options=base)) == 4
    narrowed = idx.search("red", options=base, k=1)
    assert [h.id for h in narrowed] == [h.id for h in idx.search("red", options=base)][:1]
    assert base.with_(k=1).k == 1 and base.k == 4  # frozen: with_ returns a copy
    with pytest.raises(Exception):  # noqa: B017 - FrozenInstanceError
        base.k = 3  # type: ignore[misc]


def test_unknown_keyword_names_the_known_ones(idx: omniret.Index) -> None:
    with pytest.raises(QueryError, match="unknown search option.*hubnes.*the options are:.*hubness"):
        idx.search("red", hubnes="qbnorm")  # type: ignore[call-arg]
    with pytest.raises(QueryError, match="options must be a SearchOptions"):
        idx.search("red", options={"k": 3})  # type: ignore[arg-type]
