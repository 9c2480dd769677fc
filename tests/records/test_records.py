"""``Index.add_records``: your own ids and content, upserted by id through the ingest pipeline."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from recordkit import COLOURS

import omniret
from omniret.errors import QueryError
from omniret.items import Modality, Record


def _png(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), rgb).save(buf, "PNG")
    return buf.getvalue()


def _open(tmp_path: Path, name: str = "idx", **kw: object) -> omniret.Index:
    return omniret.open(str(tmp_path / name), model="fake", **kw)


def test_every_kind_of_image_and_text_becomes_a_searchable_record(tmp_path: Path, pictures: Path) -> None:
    red, green, blue, yellow = COLOURS.values()
    rows = [
        {"id": "p-red", "image": str(pictures / "red.png"), "text": "a red square", "metadata": {"shop": "a"}},
        Record("b-green", image=_png(green), metadata={"shop": "b"}),
        {"id": "pil-blue", "image": Image.new("RGB", (40, 30), blue)},
        {"id": "arr-yellow", "image": np.full((16, 16, 3), yellow, dtype=np.uint8)},
        {"id": "float-grey", "image": np.full((16, 16), 0.5)},
        {"id": "hf-red", "image": {"bytes": _png(red), "path": None}},
        {"id": 7, "text": "rockets launch satellites into orbit", "metadata": {"n": np.int64(3), "x": np.float32(0.5)}},
    ]
    with _open(tmp_path) as idx:
        report = idx.add_records(rows, workers=0)
        assert (report.new, report.items, report.failed) == (7, 7, [])
        red_hit = idx.search(image=str(pictures / "red.png"), k=2)
        assert {h.id for h in red_hit} == {"p-red", "hf-red"} and red_hit[0].score > 0.99
        assert idx.search(image=Image.new("RGB", (8, 8), green), k=1)[0].id == "b-green"
        text_hit = idx.search("rocket launch", k=1, modality="text")[0]
        assert (text_hit.id, text_hit.uri, text_hit.metadata) == ("7", "record:7", {"n": 3, "x": 0.5})
        item = idx.get("p-red")
        assert item.uri == (pictures / "red.png").as_uri() and item.modality is Modality.IMAGE
        assert item.text == "a red square" and item.metadata["caption"] == "a red square"
        assert item.metadata["width"] == 32 and item.mtime == pytest.approx(os.stat(pictures / "red.png").st_mtime)
        assert [h.id for h in idx.search("square", k=5, where={"shop": "b"})] == ["b-green"]
        assert idx.get("float-grey").metadata["height"] == 16


def test_upsert_by_id_skips_unchanged_and_reembeds_changed(tmp_path: Path) -> None:
    with _open(tmp_path) as idx:
        rows = [{"id": "n1", "text": "pasta with tomato sauce"}, {"id": "n2", "text": "a cat sleeps in the sun"}]
        idx.add_records(rows, workers=0)
        before = idx.store.version()
        again = idx.add_records(rows, workers=0)
        assert (again.new, again.changed, again.unchanged, again.items) == (0, 0, 2, 0)
        assert idx.store.version() == before  # nothing to commit
        changed = idx.add_records([{"id": "n1", "text": "rockets and satellites"},
                                   {"id": "n3", "text": "first"}, {"id": "n3", "text": "violin history notes"}],
                                  workers=0)
        assert (changed.new, changed.changed, changed.unchanged) == (1, 1, 0)
        assert idx.search("rockets satellites", k=1)[0].id == "n1"
        assert idx.get("n3").text == "violin history notes"  # a repeated id: the last row wins
        assert idx.store.count() == 3
        meta = idx.add_records([{"id": "n2", "text": "a cat sleeps in the sun", "metadata": {"tag": "pets"}}],
                               workers=0)
        assert meta.changed == 1 and idx.get("n2").metadata == {"tag": "pets"}


def test_bad_rows_are_reported_one_by_one_and_lose_nothing(tmp_path: Path, pictures: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add_records([{"id": "keep", "image": str(pictures / "blue.png")}], workers=0)
        old = idx.store.vectors(idx.encoder.space, ["keep"])
        rows = [
            {"id": "keep", "image": b"this is not an image"},
            {"id": "gone", "image": str(tmp_path / "missing.jpg")},
            {"id": "odd", "colour": "red"},
            {"id": "empty"},
            {"text": "no id here"},
            "just a string",
            {"id": "meta", "text": "x", "metadata": {"when": object()}},
            {"id": "shape", "image": np.zeros((4, 4, 7))},
            {"id": "fine", "text": "this one is fine"},
        ]
        report = idx.add_records(rows, workers=0)
        reasons = dict(report.failed)
        assert report.items == 1 and idx.get("fine") is not None
        assert reasons["keep"] == "not an image (looks like text)"
        assert reasons["gone"] == "file vanished"
        assert "unknown record field(s) colour" in reasons["odd"] and "metadata" in reasons["odd"]
        assert "has no content" in reasons["empty"]
        assert "non-empty string" in reasons["row 4"] and "dict or omniret.Record" in reasons["row 5"]
        assert "JSON values" in reasons["meta"] and "(H, W, 3)" in reasons["shape"]
        assert np.array_equal(idx.store.vectors(idx.encoder.space, ["keep"]), old)  # the stored version stays
        assert idx.get("keep").uri.endswith("blue.png")
        assert {"keep", "gone", "shape"} <= {e["uri"] for e in idx.info()["last_errors"]}
        with pytest.raises(QueryError, match="iterable of records"):
            idx.add_records({"id": "x", "text": "one record, not wrapped in a list"})


def test_records_and_files_never_touch_each_other(tmp_path: Path, pictures: Path) -> None:
    with _open(tmp_path) as idx:
        idx.add(str(pictures), workers=0)
        red = str(pictures / "red.png")
        idx.add_records([{"id": "sku-1", "image": red, "text": "red thing"}], workers=0)
        file_id = next(h.id for h in idx.search(image=red, k=5) if not h.uri.startswith("file:"))
        clash = idx.add_records([{"id": file_id, "text": "takes a file's id"}], workers=0)
        assert "belongs to the file item" in dict(clash.failed)[file_id]
        assert idx.get(file_id).uri == os.path.realpath(red)
        Image.new("RGB", (32, 32), (0, 0, 0)).save(red)  # the file changes: re-added, its items replaced
        os.utime(red, (1, 1))
        assert idx.add(str(pictures), workers=0).changed == 1
        (pictures / "green.png").unlink()
        assert idx.add(str(pictures), prune=True, workers=0).removed == 1
        assert idx.remove([red]) == 1
        assert idx.get("sku-1") is not None and idx.get("sku-1").text == "red thing"
        assert idx.remove(["sku-1"]) == 1 and idx.get("sku-1") is None


def test_decode_workers_give_the_same_vectors(tmp_path: Path, pictures: Path) -> None:
    rows = [{"id": f"r{i}-{name}", "image": str(pictures / f"{name}.png"), "text": f"{name} {i}"}
            for i in range(6) for name in COLOURS]
    rows.append({"id": "bad", "image": b"\x89PNG\r\n\x1a\n broken"})
    with _open(tmp_path, "a") as a, _open(tmp_path, "b") as b:
        seen: list[tuple[int, int]] = []
        ra = a.add_records(rows, workers=0, commit_every=5, progress=lambda d, t: seen.append((d, t)))
        rb = b.add_records(iter(rows), workers=2, commit_every=5)  # a stream without a length, in processes
        assert ra.items == rb.items == 24 and [u for u, _ in ra.failed] == [u for u, _ in rb.failed] == ["bad"]
        ids = [r["id"] for r in rows[:-1]]
        assert np.array_equal(a.store.vectors(a.encoder.space, ids), b.store.vectors(b.encoder.space, ids))
        assert seen[-1] == (25, 25) and a.store.version() >= 5  # several commits


def test_audio_records_in_the_audio_space(tmp_path: Path) -> None:
    import soundfile as sf
    from recordkit import tone

    sf.write(tmp_path / "hum.wav", tone(300, 12.0), 16_000)
    rows = [{"id": "hum", "audio": str(tmp_path / "hum.wav"), "text": "the fridge"},
            {"id": "beep", "audio": (tone(3000, 4.0), 16_000)},
            {"id": "hf", "audio": {"array": tone(300, 3.0).astype(np.float64), "sampling_rate": 16_000}},
            {"id": "wav-bytes", "audio": (tmp_path / "hum.wav").read_bytes()}]
    with omniret.open(str(tmp_path / "i"), model="fake", audio_model="fake-clap") as idx:
        report = idx.add_records(rows, workers=0)
        assert (report.items, report.failed, report.unembedded) == (4, [], 0)
        hits = idx.search(audio=str(tmp_path / "hum.wav"), k=4)
        assert hits[0].id in {"hum", "wav-bytes", "hf"} and hits[-1].id == "beep"
        assert idx.get("hum").metadata["duration"] == pytest.approx(12.0)
        assert idx.search("300 hz", k=1, modality="audio")[0].id in {"hum", "wav-bytes", "hf"}
    with _open(tmp_path, "noaudio") as idx:
        report = idx.add_records(rows[:2], workers=0)
        assert report.unembedded == 2 and idx.get("hum").metadata["embedded"] is False
