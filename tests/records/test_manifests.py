"""Manifests (Parquet, CSV, TSV, JSONL), WebDataset shards, ``datasets.Dataset`` and URLs fetched from a
local HTTP server, through ``add_manifest`` / ``add_records`` and ``omniret add``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from httpserver import serve
from PIL import Image
from recordkit import COLOURS

import omniret
from omniret.cli.main import cli
from omniret.errors import MediaError, OmniretError
from omniret.sources.fetch import FetchLimits, fetch


def _png(rgb: tuple[int, int, int], size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), rgb).save(buf, "JPEG")
    return buf.getvalue()


def test_fetch_limits_against_a_local_server() -> None:
    with serve({"/red.png": _png(COLOURS["red"]), "/big": b"y" * 200_000}) as base:
        assert fetch(f"{base}/red.png") == _png(COLOURS["red"])
        assert fetch(f"{base}/redirect/red.png") == _png(COLOURS["red"])
        small = FetchLimits(max_bytes=50_000, timeout=20.0)  # generous: the machine may be busy
        with pytest.raises(MediaError, match="HTTP 404"):
            fetch(f"{base}/missing", small)
        with pytest.raises(MediaError, match=r"too large: 200,000 bytes declared, the limit is 50,000"):
            fetch(f"{base}/big", small)
        with pytest.raises(MediaError, match="too large: over the limit of 50,000 bytes"):
            fetch(f"{base}/endless", small)  # chunked, no length: cut off while streaming
        with pytest.raises(MediaError, match=r"timed out after 1 s"):
            fetch(f"{base}/slow", FetchLimits(timeout=1.0))  # the server answers after 8 s
        with pytest.raises(MediaError, match="more than 0 redirects"):
            fetch(f"{base}/redirect/red.png", FetchLimits(max_redirects=0))
    with pytest.raises(MediaError, match="only http"):
        fetch("file:///etc/passwd")


def test_parquet_manifest_of_urls_and_paths_with_per_row_errors(tmp_path: Path, pictures: Path) -> None:
    files = {f"/{name}.png": _png(rgb) for name, rgb in COLOURS.items()} | {"/big.png": _png((1, 2, 3), 400)}
    with serve(files) as base:
        table = pa.table({
            "key": ["u-red", "u-green", "p-blue", "u-404", "u-big", "u-slow", "p-missing"],
            "url": [f"{base}/red.png", f"{base}/green.png", "pictures/blue.png", f"{base}/nope.png",
                    f"{base}/big.png", f"{base}/slow", "pictures/none.png"],
            "caption": ["a red square", "a green square", "a blue square", "gone", "too big", "slow", "missing"],
            "w": [24, 24, 32, 0, 400, 0, 0],
            "source": ["web", "web", "disk", "web", "web", "web", "disk"],
        })
        pq.write_table(table, tmp_path / "m.parquet")
        r = CliRunner().invoke(cli, ["add", str(tmp_path / "m.parquet"), "--image-col", "url", "--text-col", "caption",
                                     "--id-col", "key", "--meta-cols", "source", "--index", str(tmp_path / "i"),
                                     "--model", "fake", "--fetch-timeout", "4", "--fetch-max-mb", "0.001",
                                     "--workers", "2", "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    failed = {f["uri"]: f["reason"] for f in report["failed"]}
    assert report["items"] == 3 and report["new"] == 7, failed
    assert failed["u-404"] == "HTTP 404 Not Found" and "timed out after 4 s" in failed["u-slow"]
    assert "too large" in failed["u-big"] and failed["p-missing"] == "file vanished"
    with omniret.open(str(tmp_path / "i")) as idx:
        hit = idx.search(image=str(pictures / "green.png"), k=1)[0]
        assert (hit.id, hit.text, hit.metadata["source"]) == ("u-green", "a green square", "web")
        assert hit.uri.startswith("http://127.0.0.1:") and "w" not in hit.metadata
        assert idx.get("p-blue").uri == (pictures / "blue.png").as_uri()  # relative to the manifest's folder
        assert [h.id for h in idx.search("square", k=5, where={"source": "disk"})] == ["p-blue"]


def test_csv_tsv_and_jsonl_manifests(tmp_path: Path, pictures: Path) -> None:
    (tmp_path / "m.csv").write_text("id,image_path,caption,price\n007,pictures/red.png,red thing,9.5\n"
                                    "008,pictures/yellow.png,\"yellow, bright\",3\n")
    (tmp_path / "m.tsv").write_text("id\ttext\nt1\tpasta with tomato sauce\nt2\trockets and satellites\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "j1", "text": "a violin concert", "tags": ["music"]})
                                      + "\n{not json\n" + json.dumps([1, 2]) + "\n"
                                      + json.dumps({"id": "j2", "body": "no text column"}) + "\n")
    with omniret.open(str(tmp_path / "i"), model="fake") as idx:
        r1 = idx.add_manifest(tmp_path / "m.csv", image_col="image_path", text_col="caption", id_col="id", workers=0)
        assert (r1.items, r1.failed) == (2, [])
        assert idx.get("007").metadata.items() >= {"price": "9.5", "caption": "red thing"}.items()  # CSV: text
        assert idx.get("008").text == "yellow, bright"
        r2 = idx.add_manifest([tmp_path / "m.tsv", tmp_path / "m.jsonl"], text_col="text", id_col="id", workers=0)
        assert r2.items == 3 and idx.search("violin", k=1)[0].id == "j1"
        assert idx.get("j1").metadata == {"tags": ["music"]}
        reasons = dict(r2.failed)
        assert "line 2 is not JSON" in reasons["m.jsonl:2"] and "not a JSON object" in reasons["m.jsonl:3"]
        assert "no column(s) text" in reasons["m.jsonl#3"]
        again = idx.add_manifest(tmp_path / "m.csv", image_col="image_path", text_col="caption", id_col="id",
                                 workers=0)
        assert (again.unchanged, again.items) == (2, 0)
        with pytest.raises(OmniretError, match="say which column holds the content"):
            idx.add_manifest(tmp_path / "m.csv", id_col="id")
        with pytest.raises(OmniretError, match="not a manifest"):
            idx.add_manifest(pictures / "red.png", image_col="x")


def _shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_shards(tmp_path: Path, pictures: Path) -> None:
    _shard(tmp_path / "00000.tar", [
        ("000000001.jpg", _jpeg(COLOURS["red"])), ("000000001.txt", b"a red square"),
        ("000000001.json", json.dumps({"url": "http://x/1.jpg", "width": 24}).encode()),
        ("000000002.png", _png(COLOURS["blue"])), ("000000002.json", json.dumps({"caption": "blue"}).encode()),
        ("000000003.cls", b"7"),
        ("000000004.jpg", b"broken jpeg"),
    ])
    _shard(tmp_path / "00001.tar", [("sub/000000005.txt", b"rockets and satellites")])
    r = CliRunner().invoke(cli, ["--index", str(tmp_path / "i"), "-q", "--json", "add", str(tmp_path / "00000.tar"),
                                 str(tmp_path / "00001.tar"), "--model", "fake", "--workers", "0"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    failed = {f["uri"]: f["reason"] for f in report["failed"]}
    assert report["items"] == 3 and set(failed) == {"000000003", "000000004"}
    assert "no content" in failed["000000003"] and "not an image" in failed["000000004"]
    with omniret.open(str(tmp_path / "i")) as idx:
        red = idx.get("000000001")
        assert red.text == "a red square"
        assert red.metadata.items() >= {"url": "http://x/1.jpg", "width": 24, "caption": "a red square"}.items()
        assert red.uri == (tmp_path / "00000.tar").as_uri() + "#000000001"
        assert idx.get("000000002").text == "blue"
        assert idx.search("rockets", k=1)[0].id == "sub/000000005"
    (tmp_path / "cut.tar").write_bytes((tmp_path / "00000.tar").read_bytes()[:700])  # inside the first member
    with omniret.open(str(tmp_path / "i")) as idx:
        cut = idx.add_manifest(tmp_path / "cut.tar", workers=0)
        assert "cannot read the shard" in dict(cut.failed)["cut.tar"]


def test_datasets_dataset_rows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({
        "img": [Image.new("RGB", (20, 20), rgb) for rgb in COLOURS.values()],
        "caption": [f"a {name} square" for name in COLOURS],
        "label": list(range(4)),
    }).cast_column("img", datasets.Image())
    with omniret.open(str(tmp_path / "i"), model="fake") as idx:
        seen: list[tuple[int, int]] = []
        report = idx.add_records(ds, image_col="img", text_col="caption", workers=0,
                                 progress=lambda d, t: seen.append((d, t)))
        assert (report.items, report.failed, seen[-1]) == (4, [], (4, 4))
        hit = idx.search(image=Image.new("RGB", (8, 8), COLOURS["blue"]), k=1)[0]
        assert (hit.id, hit.text, hit.metadata["label"]) == ("rows#2", "a blue square", 2)
        streamed = idx.add_records(ds.to_iterable_dataset(), image_col="img", text_col="caption", workers=0)
        assert streamed.unchanged == 4  # the same rows, the same ids: nothing to do


def test_add_refuses_column_options_for_plain_files(tmp_path: Path, pictures: Path) -> None:
    r = CliRunner().invoke(cli, ["add", str(pictures), "--image-col", "url", "--index", str(tmp_path / "i"),
                                 "--model", "fake"])
    assert r.exit_code == 2 and "is not one" in r.stderr
