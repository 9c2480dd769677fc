"""Every dataset loader reads a small hand-written copy of its real layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniret.errors import OmniretError
from omniret.eval.datasets import EvalDataset, formats, get_loader, load_dataset
from omniret.eval.datasets.fashioniq import join_captions
from omniret.eval.metrics import evaluate_run, transpose_qrels
from omniret.items import Modality


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- registry

def test_registry_lists_every_format_and_rejects_unknown() -> None:
    assert set(formats()) >= {"karpathy", "cirr", "fashioniq", "msrvtt", "audiocaps", "clotho", "esc50",
                              "imagefolder", "beir", "jsonl"}
    for name in formats():
        assert callable(get_loader(name))
    with pytest.raises(OmniretError, match="unknown dataset format 'coco'; choose from karpathy, cirr"):
        load_dataset("coco", ".")


# ---------------------------------------------------------------- Karpathy

def _karpathy(tmp_path: Path) -> Path:
    images = [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "split": "test",
         "cocoid": 42, "sentids": [0, 1],
         "sentences": [{"raw": "A dog on a couch. ", "sentid": 0, "imgid": 0, "tokens": ["a", "dog"]},
                       {"raw": "A brown dog resting.", "sentid": 1, "imgid": 0, "tokens": []}]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000000073.jpg", "imgid": 1, "split": "test",
         "cocoid": 73, "sentids": [2],
         "sentences": [{"raw": "A motorcycle parked.", "sentid": 2, "imgid": 1, "tokens": []}]},
        {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "imgid": 2,
         "split": "train", "cocoid": 9, "sentids": [3],
         "sentences": [{"raw": "Food in bowls.", "sentid": 3, "imgid": 2, "tokens": []}]},
    ]
    for img in images:
        touch(tmp_path / "coco" / img["filepath"] / img["filename"])
    return write_json(tmp_path / "coco" / "dataset_coco.json", {"dataset": "coco", "images": images})


def test_karpathy_coco_test_split(tmp_path: Path) -> None:
    path = _karpathy(tmp_path)
    ds = load_dataset("karpathy", path.parent)
    assert isinstance(ds, EvalDataset) and ds.task == "retrieval" and ds.name == "coco-test"
    assert [d.id for d in ds.corpus] == ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"]
    assert ds.corpus[0].content == str(tmp_path / "coco" / "val2014" / "COCO_val2014_000000000042.jpg")
    assert ds.corpus[0].modality is Modality.IMAGE and ds.corpus[0].metadata["cocoid"] == 42
    assert [(q.id, q.content) for q in ds.queries] == [
        ("0", "A dog on a couch."), ("1", "A brown dog resting."), ("2", "A motorcycle parked.")]
    assert ds.qrels == {"0": {"COCO_val2014_000000000042.jpg": 1.0}, "1": {"COCO_val2014_000000000042.jpg": 1.0},
                        "2": {"COCO_val2014_000000000073.jpg": 1.0}}
    i2t = transpose_qrels(ds.qrels)
    assert i2t["COCO_val2014_000000000042.jpg"] == {"0": 1.0, "1": 1.0}
    assert len(load_dataset("karpathy", path, split="all").corpus) == 3


def test_karpathy_flickr_layout_and_errors(tmp_path: Path) -> None:
    images = [{"filename": "1000092795.jpg", "imgid": 0, "split": "test",
               "sentences": [{"raw": "Two young guys.", "sentid": 0, "imgid": 0}]}]
    path = write_json(tmp_path / "dataset_flickr30k.json", {"dataset": "flickr30k", "images": images})
    with pytest.raises(OmniretError, match=r"1 of 1 media files not found, e\.g\. .*1000092795\.jpg"):
        load_dataset("karpathy", path)
    touch(tmp_path / "flickr30k-images" / "1000092795.jpg")
    ds = load_dataset("karpathy", path, images=tmp_path / "flickr30k-images")
    assert ds.corpus[0].content == str(tmp_path / "flickr30k-images" / "1000092795.jpg")
    with pytest.raises(OmniretError, match=r"no images in split 'val'; splits present: \['test'\]"):
        load_dataset("karpathy", path, split="val", check_files=False)
    with pytest.raises(OmniretError, match="Karpathy split JSON not found"):
        load_dataset("karpathy", tmp_path / "nope.json")


# ---------------------------------------------------------------- CIRR

def _cirr(tmp_path: Path) -> Path:
    root = tmp_path / "cirr"
    names = ["dev-245-2-img0", "dev-850-0-img1", "dev-1-0-img2", "dev-1-1-img0"]
    write_json(root / "image_splits" / "split.rc2.val.json", {n: f"./dev/{n}.png" for n in names})
    for n in names:
        touch(root / "dev" / f"{n}.png")
    write_json(root / "captions" / "cap.rc2.val.json", [
        {"pairid": 12063, "reference": "dev-245-2-img0", "target_hard": "dev-850-0-img1",
         "target_soft": {"dev-850-0-img1": 1.0}, "caption": "  Be a same breed dog with his puppy ",
         "img_set": {"id": 58, "members": ["dev-245-2-img0", "dev-850-0-img1", "dev-1-0-img2"]}},
        {"pairid": 7, "reference": "dev-1-0-img2", "target_hard": "dev-1-1-img0",
         "target_soft": {"dev-1-1-img0": 1.0}, "caption": "Show more birds",
         "img_set": {"id": 3, "members": ["dev-1-0-img2", "dev-1-1-img0"]}},
    ])
    write_json(root / "image_splits" / "split.rc2.test1.json", {n: f"./dev/{n}.png" for n in names})
    write_json(root / "captions" / "cap.rc2.test1.json", [
        {"pairid": 1, "reference": "dev-1-0-img2", "caption": "x", "img_set": {"id": 1, "members": []}}])
    return root


def test_cirr_val(tmp_path: Path) -> None:
    root = _cirr(tmp_path)
    ds = load_dataset("cirr", root)
    assert ds.task == "composed" and len(ds.corpus) == 4
    q = ds.queries[0]
    assert (q.id, q.content, q.modality) == ("12063", "Be a same breed dog with his puppy", Modality.TEXT)
    assert q.extra["reference"] == str(root / "dev" / "dev-245-2-img0.png")
    assert q.extra["exclude"] == ["dev-245-2-img0"] and len(q.extra["subset"]) == 3
    assert ds.qrels == {"12063": {"dev-850-0-img1": 1.0}, "7": {"dev-1-1-img0": 1.0}}


def test_cirr_errors(tmp_path: Path) -> None:
    root = _cirr(tmp_path)
    with pytest.raises(OmniretError, match="targets are hidden.*split='val'"):
        load_dataset("cirr", root, split="test1")
    with pytest.raises(OmniretError, match="unknown CIRR split 'dev'; choose from train, val, test1"):
        load_dataset("cirr", root, split="dev")
    with pytest.raises(OmniretError, match=r"CIRR image split file not found: .*split\.rc2\.train\.json"):
        load_dataset("cirr", root, split="train")


# ---------------------------------------------------------------- FashionIQ

def test_fashioniq_dress_val(tmp_path: Path) -> None:
    root = tmp_path / "fiq"
    names = ["B003FGW7MK", "B008BHCT58", "B00006M009"]
    write_json(root / "image_splits" / "split.dress.val.json", names)
    for n in names:
        touch(root / "images" / f"{n}.png")
    write_json(root / "captions" / "cap.dress.val.json", [
        {"target": "B008BHCT58", "candidate": "B003FGW7MK",
         "captions": ["is solid black with no sleeves.", " is black with straps? "]},
        {"target": "B00006M009", "candidate": "B008BHCT58", "captions": ["IS Longer", "has a belt"]},
    ])
    ds = load_dataset("fashioniq", root, category="dress", split="val")
    assert ds.task == "composed" and ds.name == "fashioniq-dress-val" and len(ds.corpus) == 3
    assert ds.queries[0].content == "Is solid black with no sleeves and is black with straps"
    assert ds.queries[1].content == "Is longer and has a belt"  # str.capitalize lowers the rest
    assert ds.queries[0].extra["reference_id"] == "B003FGW7MK"
    assert ds.queries[0].extra["reference"] == str(root / "images" / "B003FGW7MK.png")
    assert ds.qrels[ds.queries[1].id] == {"B00006M009": 1.0}
    with pytest.raises(OmniretError, match="unknown FashionIQ category 'pants'; choose from dress, shirt, toptee"):
        load_dataset("fashioniq", root, category="pants")
    with pytest.raises(OmniretError, match=r"FashionIQ caption file not found: .*cap\.shirt\.val\.json"):
        write_json(root / "image_splits" / "split.shirt.val.json", [])
        load_dataset("fashioniq", root, category="shirt")


def test_fashioniq_caption_join_matches_spec() -> None:
    assert join_captions(["  is red. ", "has long sleeves,"]) == "Is red and has long sleeves"


# ---------------------------------------------------------------- MSR-VTT

def test_msrvtt_jsfusion_csv(tmp_path: Path) -> None:
    write_text(tmp_path / "MSRVTT_JSFUSION_test.csv",
               "key,vid_key,video_id,sentence\n"
               "ret0,msr7579,video7579,a girl wearing red top and black trousers is putting a sweater on a dog\n"
               "ret1,msr7725,video7725,young people sit around the edges of a room clapping\n")
    touch(tmp_path / "MSRVTT_Videos" / "video7579.mp4")
    touch(tmp_path / "MSRVTT_Videos" / "video7725.mp4")
    ds = load_dataset("msrvtt", tmp_path)
    assert [d.id for d in ds.corpus] == ["video7579", "video7725"]
    assert ds.corpus[0].modality is Modality.VIDEO
    assert ds.corpus[0].content == str(tmp_path / "MSRVTT_Videos" / "video7579.mp4")
    assert ds.qrels == {"ret0": {"video7579": 1.0}, "ret1": {"video7725": 1.0}}


def test_msrvtt_json_list_with_caption_lists(tmp_path: Path) -> None:
    path = write_json(tmp_path / "test.json", [
        {"video": "video1.mp4", "caption": ["a man sings", "someone is singing"]},
        {"clip_name": "video2", "sentence": "a cat jumps"},
    ])
    touch(tmp_path / "videos" / "video1.webm")
    with pytest.raises(OmniretError, match=r"1 of 2 media files not found, e\.g\. .*video2\.mp4"):
        load_dataset("msrvtt", path)
    ds = load_dataset("msrvtt", path, check_files=False)
    assert ds.corpus[0].content.endswith("video1.webm") and len(ds.queries) == 3
    assert [ds.qrels[q.id] for q in ds.queries] == [{"video1": 1.0}, {"video1": 1.0}, {"video2": 1.0}]


# ---------------------------------------------------------------- AudioCaps / Clotho

def test_audiocaps_csv(tmp_path: Path) -> None:
    write_text(tmp_path / "test.csv",
               "audiocap_id,youtube_id,start_time,caption\n"
               "103549,7fmOlUlwoNg,20,Constant rattling noise and sharp vibrations\n"
               "103548,7fmOlUlwoNg,20,A rattling noise with vibrations\n"
               "104000,--0w1YA1Hm4,30,A vehicle driving as a man speaks\n")
    touch(tmp_path / "test" / "7fmOlUlwoNg_20.wav")
    touch(tmp_path / "test" / "Y--0w1YA1Hm4_30.000_40.000.wav")
    ds = load_dataset("audiocaps", tmp_path, split="test")
    assert [d.id for d in ds.corpus] == ["7fmOlUlwoNg_20", "--0w1YA1Hm4_30"]
    assert ds.corpus[1].content.endswith("Y--0w1YA1Hm4_30.000_40.000.wav")
    assert ds.corpus[0].modality is Modality.AUDIO
    assert ds.qrels["103548"] == {"7fmOlUlwoNg_20": 1.0} and len(ds.queries) == 3
    bad = write_text(tmp_path / "bad.csv", "youtube_id,caption\nx,y\n")
    with pytest.raises(OmniretError, match=r"missing column\(s\) \['audiocap_id', 'start_time'\]"):
        load_dataset("audiocaps", bad)


def test_clotho_csv(tmp_path: Path) -> None:
    write_text(tmp_path / "clotho_captions_evaluation.csv",
               "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
               "Santa Motor.wav,A machine whines,Something hums,A motor runs,An engine idles,Machine noise\n"
               '"birds, morning.wav",Birds chirp,Birds sing,Chirping,Morning birds,Many birds\n')
    touch(tmp_path / "evaluation" / "Santa Motor.wav")
    touch(tmp_path / "evaluation" / "birds, morning.wav")
    ds = load_dataset("clotho", tmp_path)
    assert ds.name == "clotho-evaluation" and len(ds.corpus) == 2 and len(ds.queries) == 10
    assert ds.corpus[1].id == "birds, morning.wav"
    assert ds.corpus[1].content == str(tmp_path / "evaluation" / "birds, morning.wav")
    assert ds.qrels["Santa Motor.wav#3"] == {"Santa Motor.wav": 1.0}
    assert [q.content for q in ds.queries[:2]] == ["A machine whines", "Something hums"]


# ---------------------------------------------------------------- ESC-50

def test_esc50(tmp_path: Path) -> None:
    write_text(tmp_path / "meta" / "esc50.csv",
               "filename,fold,target,category,esc10,src_file,take\n"
               "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
               "1-100038-A-14.wav,1,14,chirping_birds,False,100038,A\n"
               "2-100648-A-0.wav,2,0,dog,True,100648,A\n")
    for name in ("1-100032-A-0.wav", "1-100038-A-14.wav", "2-100648-A-0.wav"):
        touch(tmp_path / "audio" / name)
    ds = load_dataset("esc50", tmp_path)
    assert ds.task == "classification" and ds.labels == ("dog", "chirping_birds")
    assert [q.content for q in ds.queries] == ["dog", "chirping birds"]
    assert ds.qrels["dog"] == {"1-100032-A-0.wav": 1.0, "2-100648-A-0.wav": 1.0}
    assert ds.corpus[1].metadata == {"label": "chirping_birds", "target": 14, "fold": 1}
    assert [d.id for d in load_dataset("esc50", tmp_path, folds=[2]).corpus] == ["2-100648-A-0.wav"]
    assert load_dataset("esc50", tmp_path, esc10=True).labels == ("dog",)
    with pytest.raises(OmniretError, match=r"ESC-50 metadata not found: .*esc50\.csv"):
        load_dataset("esc50", tmp_path / "audio")


# ---------------------------------------------------------------- ImageFolder

def test_imagefolder_with_and_without_class_index(tmp_path: Path) -> None:
    root = tmp_path / "val"
    touch(root / "n01440764" / "ILSVRC2012_val_00000293.JPEG")
    touch(root / "n01443537" / "ILSVRC2012_val_00000236.JPEG")
    touch(root / "n01443537" / "notes.txt")
    ds = load_dataset("imagefolder", root)
    assert ds.labels == ("n01440764", "n01443537") and len(ds.corpus) == 2
    index = write_json(tmp_path / "imagenet_class_index.json",
                       {"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"], "2": ["n0000", "x"]})
    ds = load_dataset("imagefolder", root, class_index=index)
    assert ds.labels == ("tench", "goldfish") and ds.task == "classification"
    assert ds.qrels["goldfish"] == {"n01443537/ILSVRC2012_val_00000236.JPEG": 1.0}
    assert ds.corpus[1].metadata == {"label": "goldfish", "target": 1, "folder": "n01443537"}
    partial = write_json(tmp_path / "names.json", {"n01440764": "tench"})
    with pytest.raises(OmniretError, match=r"no name for class folder\(s\) \['n01443537'\]"):
        load_dataset("imagefolder", root, class_index=partial)


# ---------------------------------------------------------------- BEIR

def test_beir(tmp_path: Path) -> None:
    write_text(tmp_path / "corpus.jsonl",
               '{"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever.", "metadata": {}}\n'
               '{"_id": "d2", "title": "", "text": "Cats sleep a lot."}\n\n')
    write_text(tmp_path / "queries.jsonl",
               '{"_id": "q1", "text": "does aspirin lower fever"}\n{"_id": "q9", "text": "unjudged"}\n')
    write_text(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    ds = load_dataset("beir", tmp_path)
    assert [d.content for d in ds.corpus] == ["Aspirin Aspirin reduces fever.", "Cats sleep a lot."]
    assert [q.id for q in ds.queries] == ["q1"]
    assert ds.qrels == {"q1": {"d1": 2.0, "d2": 0.0}}
    run = {"q1": {"d2": 0.9, "d1": 0.5}}
    assert evaluate_run(run, ds.qrels, ["mrr@10"])["mrr@10"] == 0.5
    with pytest.raises(OmniretError, match=r"BEIR qrels for split 'dev' not found: .*dev\.tsv"):
        load_dataset("beir", tmp_path, split="dev")
    write_text(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\tgone\t1\n")
    with pytest.raises(OmniretError, match=r"judged against documents not in the corpus \(\['gone'\]\)"):
        load_dataset("beir", tmp_path)


# ---------------------------------------------------------------- omniret JSONL

def test_omniret_jsonl_folder_corpus(tmp_path: Path) -> None:
    touch(tmp_path / "photos" / "bike.jpg")
    touch(tmp_path / "photos" / "cat.png")
    touch(tmp_path / "sounds" / "dog.wav")
    write_text(tmp_path / "photos" / "readme.md", "about the photos")
    touch(tmp_path / "photos" / "ignored.bin")
    touch(tmp_path / "q" / "cat.jpg")
    queries = write_text(tmp_path / "q" / "judged.jsonl", "\n".join(json.dumps(o) for o in [
        {"id": "q1", "text": "a red bicycle", "relevant": ["photos/bike.jpg"]},
        {"id": "q2", "image": "cat.jpg", "relevant": {"photos/cat.png": 2, "photos/bike.jpg": 0}},
        {"id": "q3", "image": "cat.jpg", "text": "but barking", "relevant": ["sounds/dog.wav"]},
    ]))
    ds = load_dataset("jsonl", queries, corpus=tmp_path)
    ids = {d.id: d for d in ds.corpus}
    assert set(ids) >= {"photos/bike.jpg", "photos/cat.png", "sounds/dog.wav", "photos/readme.md"}
    assert "photos/ignored.bin" not in ids
    assert ids["photos/readme.md"].content == "about the photos"
    assert ids["sounds/dog.wav"].modality is Modality.AUDIO
    q1, q2, q3 = ds.queries
    assert (q1.modality, q2.modality, q2.content) == (Modality.TEXT, Modality.IMAGE, str(tmp_path / "q" / "cat.jpg"))
    assert q3.extra == {"reference": str(tmp_path / "q" / "cat.jpg")} and ds.task == "composed"
    assert ds.qrels["q2"] == {"photos/cat.png": 2.0, "photos/bike.jpg": 0.0}


def test_omniret_jsonl_jsonl_corpus_and_errors(tmp_path: Path) -> None:
    write_text(tmp_path / "corpus.jsonl",
               '{"id": "a", "text": "alpha"}\n{"id": "b", "image": "b.png", "metadata": {"k": 1}}\n')
    write_text(tmp_path / "queries.jsonl", '{"id": "q", "text": "first letter", "relevant": ["a"]}\n')
    ds = load_dataset("jsonl", tmp_path)
    assert ds.task == "retrieval" and ds.corpus[1].content == str(tmp_path / "b.png")
    assert ds.corpus[1].metadata == {"k": 1}
    write_text(tmp_path / "queries.jsonl", '{"id": "q", "text": "x"}\n')
    with pytest.raises(OmniretError, match=r"queries\.jsonl:1: query 'q' has no 'relevant' judgements"):
        load_dataset("jsonl", tmp_path)
    write_text(tmp_path / "queries.jsonl", '{"id": "q", "text": "x", "relevant": ["zzz"]}\n')
    with pytest.raises(OmniretError, match="not in the corpus"):
        load_dataset("jsonl", tmp_path)
    write_text(tmp_path / "queries.jsonl", '{"id": "q", "text": "x", "relevant": ["a"]}\n{oops\n')
    with pytest.raises(OmniretError, match=r"queries\.jsonl:2: invalid JSON"):
        load_dataset("jsonl", tmp_path)
    with pytest.raises(OmniretError, match="pass corpus="):
        load_dataset("jsonl", tmp_path / "queries.jsonl")


def test_dataset_rejects_duplicate_ids() -> None:
    from omniret.eval.datasets import EvalDoc

    doc = EvalDoc("x", "t", Modality.TEXT)
    with pytest.raises(OmniretError, match="duplicate document id 'x'"):
        EvalDataset("d", (doc, doc), (), {})
