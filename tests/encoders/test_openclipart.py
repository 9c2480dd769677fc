"""The Open Clip Art set builder on a small tree written here (the real packages are not needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from omniret.errors import OmniretError
from omniret.eval import openclipart as oca

SVG = """<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:cc="http://web.resource.org/cc/"
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><metadata><rdf:RDF><cc:Work rdf:about="">
<dc:title>{title}</dc:title><dc:description>{desc}</dc:description>
<dc:subject><rdf:Bag>{subjects}</rdf:Bag></dc:subject>
<dc:publisher><cc:Agent><dc:title>Publisher Name</dc:title></cc:Agent></dc:publisher>
</cc:Work></rdf:RDF></metadata><rect width="1" height="1"/></svg>"""


def _svg(title: str, subjects: list[str], desc: str = "") -> str:
    return SVG.format(title=title, desc=desc, subjects="".join(f"<rdf:li>{s}</rdf:li>" for s in subjects))


def test_parse_takes_the_work_title_not_the_agents() -> None:
    title, subjects, desc = oca.parse_svg_metadata(_svg("Red  Apple", ["fruit", "apple"], "a shiny apple"))
    assert (title, subjects, desc) == ("Red Apple", ("fruit", "apple"), "a shiny apple")
    assert oca.parse_svg_metadata("<svg/>") == ("", (), "")


def _tree(root: Path, entries: dict[str, tuple[str, list[str]]]) -> None:
    for rel, (title, subjects) in entries.items():
        for kind in ("svg", "png"):
            p = root / kind / f"{rel}.{kind}"
            p.parent.mkdir(parents=True, exist_ok=True)
            if kind == "svg":
                p.write_text(_svg(title, subjects), encoding="utf-8")
            else:
                Image.new("RGBA", (4, 4)).save(p)


def test_build_and_load(tmp_path: Path) -> None:
    entries = {f"animals/cat_{i}": ("Cat", ["cat", "animal"]) for i in range(2)}
    entries |= {f"icons/set_{i}": ("Icon Set", ["icon"]) for i in range(7)}  # a collection name, not a caption
    entries |= {"food/apple": ("Apple", ["fruit", "unsorted"]), "food/pear": ("", ["fruit"])}
    _tree(tmp_path / "src", entries)
    (tmp_path / "src" / "png" / "food" / "orphan.png").write_bytes(b"")  # no SVG twin: ignored
    counts = oca.build(tmp_path / "src", tmp_path / "out")
    assert counts == {"images": 10, "title_queries": 2, "keyword_queries": 1}  # untitled pear dropped
    corpus, queries, qrels = oca.load(tmp_path / "out", "title")
    assert len(corpus) == 10 and all(Path(c.path).is_file() for c in corpus)
    assert sorted(queries.values()) == ["Apple", "Cat"]
    by_text = {queries[q]: ids for q, ids in qrels.items()}
    assert by_text["Cat"] == {"animals/cat_0", "animals/cat_1"} and by_text["Apple"] == {"food/apple"}
    _, kq, kr = oca.load(tmp_path / "out", "keyword")
    # keywords need >= 5 images by default: only "icon" qualifies
    assert {kq[q]: len(ids) for q, ids in kr.items()} == {"icon": 7}


def test_keyword_task_bounds() -> None:
    items = [oca.ClipArt(f"i{i}", "", "t", ("dog",) if i < 5 else ("unsorted", "cat")) for i in range(8)]
    q, r = oca.keyword_task(items, min_images=3, max_images=10)
    assert {q[k]: r[k] for k in q} == {"cat": {"i5", "i6", "i7"}, "dog": {f"i{i}" for i in range(5)}}


def test_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(OmniretError, match="apt-get download"):
        oca.build(tmp_path, tmp_path / "out")
    with pytest.raises(OmniretError, match="choose from"):
        oca.load(tmp_path, "nope")
