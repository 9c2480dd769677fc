"""The ``omniret`` command: a thin click layer over :class:`omniret.index.Index`.

Each command parses its input, calls one library function, maps errors to an exit code with one
clear line (a traceback only with ``--debug``) and formats the output (human text, or JSON lines
with ``--json``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from omniret.cli.common import (  # noqa: F401 - re-exported for the command modules
    EXIT_INTERNAL,
    EXIT_PROBLEMS,
    EXIT_USER_ERROR,
    Settings,
    _emit,
    _errors,
    _open,
    _parse_where,
    _prepare_queries,
    _progress,
    _settings,
    _text_file,
    _track,
    echo,
    silence_third_party_progress,
)
from omniret.cli.globals import accept_after_command
from omniret.errors import OmniretError
from omniret.query import names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--index", "index_dir", envvar="OMNIRET_INDEX", default=".omniret", show_default=True,
              help="Index folder, or a store URI such as milvus-lite:///x.db or milvus://host:19530/coll (env OMNIRET_INDEX).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON lines).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars (ours, nor model loading bars of other libraries).")
@click.option("--device", envvar="OMNIRET_DEVICE", default=None, help="cpu, cuda, cuda:1... (default: auto).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None, help="Encoder batch size.")
@click.option("--query-cache/--no-query-cache", envvar="OMNIRET_QUERY_CACHE", default=True, show_default=True,
              help="Embed queries with the model's ONNX query towers kept in the index (no torch; written after "
                   "add or the first search); --no-query-cache loads the model for every query (env OMNIRET_QUERY_CACHE=0).")
@click.option("--daemon/--no-daemon", "use_daemon", envvar="OMNIRET_DAEMON", default=True, show_default=True,
              help="Let a running `omniret daemon` answer searches (env OMNIRET_DAEMON=0 to search in-process).")
@click.version_option(package_name="omniret")
@click.pass_context
def cli(ctx: click.Context, index_dir: str, as_json: bool, debug: bool, quiet: bool,
        device: str | None, batch_size: int | None, query_cache: bool, use_daemon: bool) -> None:
    """omniret: zero-shot multimodal retrieval over your files."""
    if quiet:
        silence_third_party_progress()
    ctx.obj = Settings(index_dir, as_json, debug, quiet, device, batch_size, query_cache, use_daemon)


@cli.command("add")
@click.argument("paths", nargs=-1, required=True)
@click.option("--model", default="auto", show_default=True, help="Model for a new index (see `omniret models`).")
@click.option("--prune", is_flag=True, help="Remove items whose files are gone.")
@click.option("--hidden", is_flag=True, help="Include hidden files and folders.")
@click.option("--retry-failed", is_flag=True, help="Try again files that failed before.")
@click.option("--workers", type=click.IntRange(0, 64), default=None, help="Decode threads (0: decode in the main thread).")
@click.option("--audio-model", default=None,
              help="Audio model (CLAP) for a new index: hf:<local folder or hub id>, or auto (if cached).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: decode workers on this machine; ray: Ray Data tasks + encoder actors.")
@click.option("--address", default=None, help="Ray cluster address (ray://host:10001); default: a local Ray.")
@click.option("--video-segments", type=click.Choice(["fixed", "scenes"]), default="fixed", show_default=True,
              help="Video segments: fixed length, or cut at scene changes (capped at the fixed length).")
@click.option("--video-ocr", is_flag=True, help="Read text on sampled video frames (RapidOCR); it becomes searchable.")
@click.option("--page-model", default=None,
              help="Multi-vector page model for PDF pages (MUVERA + MaxSim): colpali:<local folder or hub id>.")
@click.option("-v", "--verbose", is_flag=True, help="List every skipped and failed file (else the first 10).")
@click.pass_context
def add_cmd(ctx: click.Context, paths: tuple[str, ...], model: str, prune: bool, hidden: bool,
            retry_failed: bool, workers: int | None, audio_model: str | None, engine: str,
            address: str | None, video_segments: str, video_ocr: bool, page_model: str | None,
            verbose: bool) -> None:
    """Index files, folders and globs (alias: index). Unchanged files are skipped."""
    from omniret.ingest.work import IngestOptions

    s = _settings(ctx)
    with _errors(s):
        from omniret.index import Index

        idx = _track(Index.open(s.index, model=model, audio_model=audio_model, page_model=page_model,
                                device=s.device, batch_size=s.batch_size, query_cache=s.query_cache))
        opts = IngestOptions(workers=workers, prune=prune, include_hidden=hidden, retry_failed=retry_failed,
                             video_segments=video_segments, video_ocr=video_ocr,
                             **({"batch_size": s.batch_size} if s.batch_size else {}))
        with _progress(s, "indexing", "file/page") as bar:  # files, and PDF pages as they are embedded
            if engine == "ray":
                from omniret.ingest.ray import ray_add

                report = ray_add(list(paths), idx, opts, address=address, progress=bar)
            else:
                report = idx.add(list(paths), options=opts, progress=bar)
        _prepare_queries(s, idx)
        idx.close()
        if s.json:
            _emit(s, {"event": "add", "index": s.index, "model": idx.encoder.name, **report.to_dict()})
        else:
            _add_summary(report, idx, paths, verbose)
        if report.indexed_nothing:
            raise OmniretError(f"nothing could be indexed: all {len(report.failed)} file(s) failed "
                               "(reasons above; `omniret info` keeps them)")


#: names and reasons listed without --verbose
SHOWN = 10


def _listing(title: str, rows: list[tuple[str, str]], verbose: bool) -> None:
    if not rows:
        return
    click.echo(f"{title} {len(rows)} file(s):")
    for uri, reason in rows if verbose else rows[:SHOWN]:
        echo(f"  {uri}: {reason}")
    if not verbose and len(rows) > SHOWN:
        click.echo(f"  ... and {len(rows) - SHOWN} more (--verbose lists them all)")


def _add_summary(report: Any, idx: Any, paths: tuple[str, ...], verbose: bool) -> None:
    """The human summary of an ``add``: counts, what was skipped or failed and why, what has no vector."""
    from omniret.sources.walk import MODALITY_BY_EXTENSION

    click.echo(f"model {idx.encoder.name}: {report.new} new, {report.changed} changed, "
               f"{report.unchanged} unchanged, {report.removed} removed files; {report.items} items "
               f"written in {report.seconds:.1f}s")
    for note in report.notes(has_audio_model=idx.audio_encoder is not None):
        click.echo(note)
    _listing("skipped", report.skipped, verbose)
    _listing("failed", report.failed, verbose)
    if report.new + report.changed + report.unchanged + len(report.failed) == 0:
        kinds = ", ".join(sorted(MODALITY_BY_EXTENSION))
        click.echo(f"no files to index found in {' '.join(paths)}; omniret indexes files ending in: {kinds}")


cli.add_command(add_cmd, "index")


@cli.command("search")
@click.argument("query", required=False)
@click.option("--image", "image", type=click.Path(dir_okay=False), help="Query by an example image (with QUERY: a composed query).")
@click.option("--expr", default=None, help='Query algebra, e.g. \'"beach" -"people" +photo.jpg @ITEMID\'.')
@click.option("-k", "--k", "k", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--modality", multiple=True, help="Only these modalities (repeatable): text, image...")
@click.option("--glob", "path_glob", default=None, help="Only items whose path matches this glob.")
@click.option("--where", multiple=True, help="Metadata equality KEY=VALUE (repeatable; VALUE parsed as JSON if it can be).")
@click.option("--mtime-min", type=float, default=None, help="Files modified at or after (epoch seconds).")
@click.option("--mtime-max", type=float, default=None, help="Files modified at or before (epoch seconds).")
@click.option("--audio", "audio", type=click.Path(dir_okay=False), help="Query by an example sound (needs an audio model).")
@click.option("--rollup", is_flag=True, help="Return files instead of chunks/segments (= --granularity parent).")
@click.option("--granularity", type=click.Choice(names.GRANULARITIES), default=None,
              help="item (default), parent (files, pages) or root (whole documents).")
@click.option("--route", default="auto", show_default=True,
              help="auto, all, llm ($OMNIRET_ROUTER_URL) or a modality (text, image, audio, video, document).")
@click.option("--hubness", type=click.Choice(names.HUBNESS), default="none", show_default=True,
              help="Hubness correction (needs a query bank: omniret bank).")
@click.option("--gap", type=click.Choice(names.GAP), default="none", show_default=True,
              help="Modality-gap correction: centring, or per-modality calibration for mixed results.")
@click.option("--compose", type=click.Choice(names.COMPOSE), default="sum", show_default=True,
              help="How --image and QUERY combine.")
@click.option("--alpha", type=float, default=None, help="Composed-query text weight (weimo) or PDV scale.")
@click.option("--beta", type=float, default=None, help="WeiMoCIR caption weight or PDV text/image mix.")
@click.option("--hybrid", type=click.Choice(names.HYBRID), default="none", show_default=True,
              help="Fuse BM25 with dense results.")
@click.option("--negative", multiple=True, help="Text to steer away from (repeatable).")
@click.option("--like", multiple=True, help="More like this item id (repeatable).")
@click.option("--candidates", type=click.IntRange(1, 100_000), default=None, help="ANN candidates the stages see (K').")
@click.option("--rerank", default="none", show_default=True,
              help="Second stage over the top hits: cross, cross:<hub id or folder>, maxsim (page model), "
                   "model:<registry name> (e.g. model:openclip:...).")
@click.option("--rerank-depth", type=click.IntRange(1, 10_000), default=None, help="Hits the re-ranker sees (default 50).")
@click.pass_context
def search_cmd(ctx: click.Context, query: str | None, image: str | None, expr: str | None, k: int,
               modality: tuple[str, ...], path_glob: str | None, where: tuple[str, ...],
               mtime_min: float | None, mtime_max: float | None, audio: str | None, rollup: bool,
               granularity: str | None, route: str, hubness: str, gap: str,
               compose: str, alpha: float | None, beta: float | None, hybrid: str,
               negative: tuple[str, ...], like: tuple[str, ...], candidates: int | None, rerank: str,
               rerank_depth: int | None) -> None:
    """Search by text (QUERY), by an example image (--image), by both, or by query algebra (--expr)."""
    s = _settings(ctx)
    with _errors(s):
        if query is None and image is None and expr is None and not like and audio is None:
            raise OmniretError("give a text QUERY, --image PATH, --audio PATH, --expr or --like ID")
        kwargs = {"text": query, "image": image, "audio": audio, "granularity": granularity, "route": route, "k": k,
                  "modality": list(modality) or None, "where": _parse_where(where), "path_glob": path_glob,
                  "mtime_min": mtime_min, "mtime_max": mtime_max, "rollup": rollup, "hubness": hubness, "gap": gap,
                  "compose": compose, "alpha": alpha, "beta": beta, "hybrid": hybrid,
                  "negative": list(negative) or None, "like": list(like) or None, "candidates": candidates,
                  "rerank": rerank, "rerank_depth": rerank_depth}
        if s.daemon and expr is None:  # a running `omniret daemon` answers without loading anything here
            from omniret.cli.daemon import remote_search

            remote = remote_search(s.index, kwargs)
            if remote is not None:
                _print_hits(s, remote["hits"])
                _print_notes(s, remote["notes"], remote["language_note"])
                return
        idx = _open(s, must_exist=True)
        terms = idx.parse_expression(expr) if expr else None
        hits = idx.search(**kwargs, terms=terms)
        _print_hits(s, [h.to_dict() for h in hits])
        _print_notes(s, [] if hits else idx.unembedded_notes(), idx.language_note(query) if query else None)
        sys.stdout.flush()
        _prepare_queries(s, idx)  # after the answer: the next search starts without torch
        idx.close()


def _print_notes(s: Settings, empty_notes: list[str], language_note: str | None) -> None:
    """Why a search found nothing, with the fix (items stored without embeddings), and a query in a
    language the model does not read; the same whether the daemon or this process searched."""
    for note in empty_notes:
        click.echo(note, err=s.json)
    if language_note and not s.json:
        click.echo(f"note: {language_note}", err=True)


def _print_hits(s: Settings, hits: list[dict[str, Any]]) -> None:
    """Hits (``Hit.to_dict()``) as JSON lines or one line each for people."""
    for rank, h in enumerate(hits, 1):
        if s.json:
            _emit(s, {"rank": rank, **h})
        else:
            echo(f"{rank:3d}. {h['score']:.4f}  {h['modality']:8s}  {_place(h)}{_snippet(h)}")
    if not hits and not s.json:
        click.echo("no results")


@cli.command("bank")
@click.option("--queries", "queries_file", type=click.Path(exists=True, dir_okay=False),
              help="A file of sample queries, one per line.")
@click.option("--from-items", is_flag=True, help="Use the index's own text items and captions.")
@click.option("--append", is_flag=True, help="Add to the existing bank instead of replacing it.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=5000, show_default=True)
@click.pass_context
def bank_cmd(ctx: click.Context, queries_file: str | None, from_items: bool, append: bool, limit: int) -> None:
    """Set the query bank that hubness corrections (--hubness) normalise by."""
    s = _settings(ctx)
    with _errors(s):
        if not queries_file and not from_items:
            raise OmniretError("give --queries FILE (one query per line) or --from-items")
        texts = None
        if queries_file:
            texts = [line.strip() for line in _text_file(queries_file, "--queries", "one query per line").splitlines()
                     if line.strip()]
        idx = _open(s, must_exist=True)
        n = idx.set_query_bank(texts, from_items=from_items, append=append, limit=limit,
                               source=f"file:{os.path.basename(queries_file)}" if queries_file else "items")
        idx.close()
        if s.json:
            _emit(s, {"event": "bank", "query_bank": n})
        else:
            click.echo(f"query bank: {n} queries")


def _snippet(h: dict[str, Any]) -> str:
    """A text chunk's start, or a document hit's section path and best matched block."""
    if h["modality"] == "text" and h.get("text"):
        return f"  {h['text'][:80]!r}"
    md = h.get("metadata") if isinstance(h.get("metadata"), dict) else {}
    out = f"  [{' › '.join(md['section'])}]" if md.get("section") else ""
    matched = md.get("matched") or []
    return out + (f"  {matched[0]['text'][:80]!r}" if matched else "")


def _place(h: dict[str, Any]) -> str:
    """Where a hit (``Hit.to_dict()``) is, for people: its label (``talk.mp4 @ 01:23–01:33``, ``book.pdf p. 2``,
    a document's title and page count) next to its path."""
    from omniret.items import Modality, display_label

    uri, span = h["uri"], h.get("span")
    label = h.get("label") or display_label(Modality(h["modality"]), uri, h.get("parent_id"), h.get("text"),
                                            h.get("metadata"))
    if label != os.path.basename(uri):
        return f"{label}  ({uri})"
    return f"{uri} [{span[0]:.0f}-{span[1]:.0f}]" if span else uri


@cli.command("remove")
@click.argument("targets", nargs=-1, required=True)
@click.pass_context
def remove_cmd(ctx: click.Context, targets: tuple[str, ...]) -> None:
    """Remove items by id, or all items of a file by its path."""
    s = _settings(ctx)
    with _errors(s):
        idx = _open(s, must_exist=True)
        n = idx.remove(list(targets))
        idx.close()
        if s.json:
            _emit(s, {"event": "remove", "removed": n})
        else:
            click.echo(f"removed {n} item(s)")


@cli.command("info")
@click.pass_context
def info_cmd(ctx: click.Context) -> None:
    """Counts, model, size on disk and recent errors of the index."""
    s = _settings(ctx)
    with _errors(s):
        idx = _open(s, must_exist=True)
        info = idx.info()
        idx.close()
        if s.json:
            _emit(s, info)
            return
        for key, value in info.items():
            if key in ("manifest", "last_errors"):
                continue
            click.echo(f"{key}: {value}")
        errs = info.get("last_errors") or []
        click.echo(f"last errors: {len(errs)}")
        for e in errs[:20]:
            echo(f"  {e['uri']}: {e['reason']}")


@cli.command("check")
@click.option("--repair", is_flag=True, help="Rebuild what is derived (FAISS files, text index, SQLite indexes).")
@click.option("--model", default=None, help="With --repair: rewrite a damaged manifest for this model.")
@click.option("--salvage", is_flag=True,
              help="With --repair: copy the readable rows of damaged tables into a new database (the rest is lost).")
@click.pass_context
def check_cmd(ctx: click.Context, repair: bool, model: str | None, salvage: bool) -> None:
    """Check the index: SQLite integrity, manifest, vectors/FAISS/FTS consistency; one line per problem.

    Exit status 0 when nothing is left to do, 3 when problems remain (see each line for what to do).
    """
    from omniret.index import ensure_index_exists
    from omniret.tasks.check import check_index

    s = _settings(ctx)
    with _errors(s):
        ensure_index_exists(s.index)
        problems = check_index(s.index, repair=repair, model=model, salvage=salvage)
        remaining = [p for p in problems if not p.repaired]
        for p in problems:
            if s.json:
                _emit(s, {"event": "problem", **p.to_dict()})
            else:
                echo(p.line())
        if s.json:
            _emit(s, {"event": "check", "index": s.index, "problems": len(problems),
                      "repaired": len(problems) - len(remaining), "remaining": len(remaining)})
        elif not problems:
            click.echo(f"{s.index}: no problems found")
        elif remaining and not repair and any(p.derived for p in remaining):
            click.echo("run `omniret check --repair` to rebuild the derived data")
    if remaining:
        sys.exit(EXIT_PROBLEMS)


@cli.command("models")
@click.pass_context
def models_cmd(ctx: click.Context) -> None:
    """List the model backends omniret knows (from the registry)."""
    from omniret.encoders.registry import entries

    s = _settings(ctx)
    with _errors(s):
        for e in entries():
            if s.json:
                _emit(s, {"prefix": e.prefix, "example": e.example, "description": e.description})
            else:
                click.echo(f"{e.example:45s} {e.description}")


@cli.command("daemon")
@click.option("--idle", type=click.FloatRange(1, None), default=600, show_default=True,
              help="Exit after this many seconds without a search.")
@click.option("--detach", is_flag=True, help="Run in the background; return once it answers.")
@click.option("--stop", "stop_it", is_flag=True, help="Stop the index's running daemon.")
@click.pass_context
def daemon_cmd(ctx: click.Context, idle: float, detach: bool, stop_it: bool) -> None:
    """Keep the index open and answer `omniret search` from memory (fastest searches); stops when idle."""
    from omniret.cli import daemon

    s = _settings(ctx)
    with _errors(s):
        if stop_it:
            click.echo("stopped" if daemon.stop(s.index) else "no daemon was running")
            return
        if detach:
            click.echo(f"daemon for {s.index} listening on {daemon.start_detached(s, idle)}")
            return
        idx = _open(s, must_exist=True)
        idx.prepare_queries()
        idx.embed_query("warm up")  # load the query tower (or the model) now, not on the first search

        def ready(path: Any) -> None:
            if not s.quiet:
                click.echo(f"serving {s.index} on {path}; exits after {idle:g} s without a search", err=True)

        try:
            daemon.serve(idx, s.index, idle, ready)
        finally:
            idx.close()


@cli.command("demo")
@click.option("--dir", "workdir", default=None,
              help="Where to write samples and the index (default: the user cache, ~/.cache/omniret/demo).")
@click.option("--model", default="offline", show_default=True)
@click.pass_context
def demo_cmd(ctx: click.Context, workdir: str | None, model: str) -> None:
    """Index bundled sample images and notes, then run a few searches."""
    from omniret.cli.demo import run_demo

    s = _settings(ctx)
    with _errors(s):
        for line in run_demo(workdir, model=model, device=s.device, as_json=s.json, quiet=s.quiet):
            click.echo(line)


def _register_subcommands() -> None:
    """Commands that live in their own modules (imported lazily by click only when run)."""
    from omniret.cli.align import align_cmd
    from omniret.cli.ask import ask_cmd
    from omniret.cli.eval import eval_group
    from omniret.cli.exchange import export_cmd, import_cmd
    from omniret.cli.manifest import extend_add
    from omniret.cli.tasks import classify_cmd, upgrade_cmd
    from omniret.mcp.cli import mcp_command
    from omniret.server.cli import serve_command

    cli.add_command(classify_cmd)
    cli.add_command(upgrade_cmd)
    cli.add_command(serve_command)
    cli.add_command(eval_group, "eval")
    cli.add_command(export_cmd)
    cli.add_command(import_cmd)
    cli.add_command(mcp_command)
    cli.add_command(ask_cmd)
    extend_add(add_cmd)  # add data.parquet|.csv|.jsonl|shard.tar --image-col ... (manifests, WebDataset)
    cli.add_command(align_cmd)


_register_subcommands()
accept_after_command(cli)  # global options also after the command (omniret add --index X DIR); keep last


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(prog_name="omniret")


if __name__ == "__main__":
    main()
