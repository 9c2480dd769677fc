"""CLI query latency: ``omniret search "a cat"`` from process start to exit, on a 1,000-image index.

    python bench/cli_bench.py --images /tmp/oca/usr/share/openclipart/png --n 1000 --repeat 10 \\
        --workdir /tmp/clibench [--rclip /tmp/rclip-venv/bin/rclip] [--out bench/RESULTS_cli.md]

1. Copies the first ``--n`` PNGs under ``--images`` (sorted paths, files over 2 MB left out) into
   ``WORKDIR/images`` and indexes them with ``omniret add --model offline`` (which also writes the
   index's ONNX query towers).
2. Runs ``--repeat`` rounds; each round runs every variant once, each in a fresh process, in an order
   rotated from round to round so that load changes hit every variant alike:
   - ``import omniret``: ``python -c "import omniret"`` (the floor of any omniret command);
   - ``search, daemon``: ``omniret --index I search "a cat"`` answered by ``omniret daemon`` (started
     before the rounds with ``--detach``);
   - ``search, query towers``: the same with ``--no-daemon`` (ONNX text tower in the process, no torch);
   - ``search, model``: ``--no-daemon --no-query-cache`` (MiniLM loaded through torch, as before);
   - ``search --image``: the three ways, with one of the indexed images as the query;
   - with ``--rclip``: ``rclip -n "a cat"`` in the image folder (rclip's own index of the same images,
     built before timing). rclip 3.3 fetches its ONNX ViT-B-32-256 towers from the Hugging Face hub,
     which this machine cannot reach: the bench writes towers of the same architecture with random
     weights (open_clip ``ViT-B-32-256``, ``pretrained=None``, fp32) where rclip looks for them
     (``RCLIP_DATADIR``), so rclip runs its real code on a model of the real size. Also
     ``python -c "import rclip.main"``.
3. Prints (and with ``--out`` writes) median, p10 and p90 wall seconds per variant, the ratio of each
   median to ``import omniret``'s, the median CPU seconds (user + system, from ``getrusage``) and the
   1-minute load average before each round.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
OMNIRET = str(Path(PY).with_name("omniret"))


def copy_images(src: Path, dest: Path, n: int) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*.png") if p.stat().st_size <= 2_000_000)[:n]
    out = []
    for i, p in enumerate(files):
        q = dest / f"{i:05d}_{p.name}"
        if not q.exists():
            shutil.copyfile(p, q)
        out.append(q)
    return out


def build_index(index: Path, images: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([OMNIRET, "--index", str(index), "-q", "add", str(images), "--model", "offline"], check=True)
    return time.perf_counter() - t0


def write_rclip_models(datadir: Path) -> None:
    """Random-init ViT-B-32-256 towers as ONNX where rclip 3.3 reads them (see the module docstring)."""
    import open_clip
    import torch

    sub = datadir / "ViT-B-32-256-datacomp_s34b_b86k"
    if (sub / "textual.onnx").exists() and (sub / "visual.onnx").exists():
        return
    sub.mkdir(parents=True, exist_ok=True)
    (datadir / "tokenizer").mkdir(exist_ok=True)
    vocab = Path(open_clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
    shutil.copyfile(vocab, datadir / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32-256", pretrained=None).eval()

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.encode_text(x)

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.encode_image(x)

    axes = {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX export
    with torch.no_grad():
        torch.onnx.export(Text(), (torch.zeros((1, 77), dtype=torch.int64),), str(sub / "textual.onnx"),
                          input_names=["input"], output_names=["output"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
        torch.onnx.export(Visual(), (torch.zeros((1, 3, 256, 256)),), str(sub / "visual.onnx"),
                          input_names=["input"], output_names=["output"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)


def load1() -> float:
    return os.getloadavg()[0]


def timed(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds from start to exit, and the CPU seconds (user + system) the process used: on a
    loaded machine the wall time waits for a core, the CPU time much less so."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same_hits(index: Path, query: list[str]) -> bool:
    """The cached towers and the model give the same top 10 (ids; scores within 1e-4)."""
    runs = []
    for flag in ("--query-cache", "--no-query-cache"):
        out = subprocess.run([OMNIRET, "--index", str(index), "--no-daemon", flag, "--json", "search", *query, "-k", "10"],
                             capture_output=True, text=True, check=True).stdout
        runs.append([json.loads(line) for line in out.splitlines()])
    a, b = runs
    return [h["id"] for h in a] == [h["id"] for h in b] and all(
        abs(x["score"] - y["score"]) <= 1e-4 for x, y in zip(a, b, strict=True))


def variants(index: Path, image: Path, rclip: str | None, images: Path, rclip_env: dict[str, str]) -> dict:
    v: dict[str, tuple[list[str], Path | None, dict[str, str] | None]] = {
        "python -c 'import omniret'": ([PY, "-c", "import omniret"], None, None),
        "omniret search 'a cat' (daemon running)": ([OMNIRET, "--index", str(index), "search", "a cat"], None, None),
        "omniret search 'a cat' (query towers)": (
            [OMNIRET, "--index", str(index), "--no-daemon", "search", "a cat"], None, None),
        "omniret search 'a cat' (model, --no-query-cache)": (
            [OMNIRET, "--index", str(index), "--no-daemon", "--no-query-cache", "search", "a cat"], None, None),
        "omniret search --image (daemon running)": (
            [OMNIRET, "--index", str(index), "search", "--image", str(image)], None, None),
        "omniret search --image (query towers)": (
            [OMNIRET, "--index", str(index), "--no-daemon", "search", "--image", str(image)], None, None),
        "omniret search --image (model, --no-query-cache)": (
            [OMNIRET, "--index", str(index), "--no-daemon", "--no-query-cache", "search", "--image", str(image)],
            None, None),
    }
    if rclip:
        rpy = str(Path(rclip).with_name("python"))
        v["rclip -n 'a cat' (same images, random-init ViT-B-32-256)"] = ([rclip, "-n", "a cat"], images, rclip_env)
        v["python -c 'import rclip.main'"] = ([rpy, "-c", "import rclip.main"], None, rclip_env)
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/omniret-clibench"))
    ap.add_argument("--rclip", default=None, help="path of the rclip command (its own virtualenv)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    images, index = args.workdir / "images", args.workdir / "index"
    files = copy_images(args.images, images, args.n)
    timing = args.workdir / "add_seconds.txt"
    if not (index / "omniret.db").exists():
        timing.write_text(f"{build_index(index, images):.1f}")
    add_s = float(timing.read_text()) if timing.exists() else float("nan")
    rclip_env = {**os.environ, "RCLIP_DATADIR": str(args.workdir / "rclip-data"), "HF_HUB_OFFLINE": "1"}
    if args.rclip:
        write_rclip_models(args.workdir / "rclip-data")
        subprocess.run([args.rclip, "-f", "warm up the index"], cwd=images, env=rclip_env, check=True,
                       stdout=subprocess.DEVNULL)
    agree = {"text": same_hits(index, ["a cat"]), "image": same_hits(index, ["--image", str(files[0])])}
    subprocess.run([OMNIRET, "--index", str(index), "daemon", "--detach", "--idle", "3600"], check=True,
                   stdout=subprocess.DEVNULL)
    v = variants(index, files[0], args.rclip, images, rclip_env)
    names = list(v)
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    loads = []
    for r in range(args.repeat):
        loads.append(load1())
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            cmd, cwd, env = v[k]
            wall, used = timed(cmd, cwd, env)
            times[k].append(wall)
            cpu[k].append(used)
        print(f"round {r}: load {loads[-1]:.2f} " + ", ".join(f"{k.split(' (')[0][:24]} {times[k][-1]:.2f}"
                                                             for k in names), flush=True)
    subprocess.run([OMNIRET, "--index", str(index), "daemon", "--stop"], stdout=subprocess.DEVNULL)
    table = report(times, cpu, names, loads, add_s, len(files), agree)
    print(table)
    if args.out:
        args.out.write_text(table)


def report(times: dict[str, list[float]], cpu: dict[str, list[float]], names: list[str], loads: list[float],
           add_s: float, n: int, agree: dict[str, bool]) -> str:
    base = statistics.median(times[names[0]])
    rows = ["| command | wall s, median | wall s, p10–p90 | wall ÷ import omniret | CPU s (user + sys), median |",
            "|---|---:|---:|---:|---:|"]
    for k in names:
        xs = sorted(times[k])
        p10, p90 = xs[int(0.1 * (len(xs) - 1))], xs[int(round(0.9 * (len(xs) - 1)))]
        rows.append(f"| `{k}` | {statistics.median(xs):.3f} | {p10:.3f}–{p90:.3f} | "
                    f"{statistics.median(xs) / base:.1f}× | {statistics.median(cpu[k]):.3f} |")
    return "\n".join([
        f"{n} images indexed (omniret add: {add_s:.0f} s); {len(loads)} rounds; 1-minute load average before "
        f"each round: {', '.join(f'{x:.2f}' for x in loads)} (median {statistics.median(loads):.2f}).",
        f"Same top 10 from the query towers and the model (ids; scores within 1e-4): text {agree['text']}, "
        f"image {agree['image']}.", "", *rows, ""])


if __name__ == "__main__":
    main()
