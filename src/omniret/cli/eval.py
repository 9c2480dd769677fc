"""``omniret eval``: prepare the offline evaluation sets and run the evaluation harness.

Registered in :mod:`omniret.cli.main` with ``cli.add_command(eval_group, "eval")``.
"""

from __future__ import annotations

from pathlib import Path

import click

from omniret.errors import OmniretError


@click.group("eval")
def eval_group() -> None:
    """Build offline evaluation sets and measure retrieval methods on them."""


@eval_group.command("prepare")
@click.argument("name", type=click.Choice(["openclipart", "pdfs", "sounds", "manuals"]))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--source", type=click.Path(), default=None,
              help="Where the raw files are: extracted packages or .deb files (downloaded if absent).")
@click.option("--set", "which", type=click.Choice(["dev", "heldout"]), default="dev", show_default=True,
              help="manuals: the development manuals or the held-back ones (final measurement only).")
@click.option("--packages", default=None, help="manuals: comma list of Debian packages whose PDF manuals to use "
              "instead of --set.")
@click.option("--strip-outline", is_flag=True, help="manuals: index copies without their outline (judgements "
              "still come from the original outline).")
def prepare_cmd(name: str, out_dir: str, source: str | None, which: str, packages: str | None,
                strip_outline: bool) -> None:
    """Build the NAME set into OUT_DIR (openclipart: title/keyword/composed; pdfs; sounds; manuals: PDF
    heading → page)."""
    from omniret.eval import prepare

    try:
        if name == "manuals":
            from omniret.eval.manuals import prepare_manuals

            pk = [p.strip() for p in packages.split(",") if p.strip()] if packages else None
            counts = prepare_manuals(out_dir, Path(source) if source else None, which, pk, strip_outline)
        elif name == "openclipart":
            src = Path(source) if source else Path(out_dir) / "debs"
            if source is None and not src.is_dir():
                from omniret.eval.openclipart import download_debs

                download_debs(src)
            counts = prepare.prepare_openclipart(src, out_dir)
        elif name == "pdfs":
            counts = prepare.prepare_pdfs(out_dir, Path(source) if source else None)
        else:
            counts = prepare.prepare_sounds(out_dir, Path(source) if source else None)
    except OmniretError as e:
        raise click.ClickException(str(e)) from e
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@eval_group.command("run")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--model", default="offline", show_default=True, help="Encoder registry name.")
@click.option("--methods", default=None, help="Comma list, e.g. raw,qbnorm,dbnorm,gap-center (default: all "
              "hubness/gap methods; composed sets: sum,weimo,pdv).")
@click.option("--task", default=None, help="Open Clip Art task: title, keyword or composed.")
@click.option("--format", "fmt", default=None, help="Dataset format from the loader registry (karpathy, beir, ...).")
@click.option("--subset", type=int, default=None, help="Seeded subset of this many corpus images (Open Clip Art).")
@click.option("--index", "index_path", default=None, type=click.Path(),
              help="Evaluate this existing index (queries from DATASET, an omniret JSONL) instead of building one.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--bank-fraction", type=float, default=None,
              help="Share of the judged queries used as the QB-Norm/DBNorm query bank (never evaluated); "
              "default 0.5 when a method needs a bank, else 0 (every judged query is evaluated).")
@click.option("--depth", type=int, default=100, show_default=True, help="Ranks retrieved per query.")
@click.option("--max-queries", type=int, default=None, help="Evaluate at most this many test queries.")
@click.option("--rerank", default=None, help="A second stage (cross, cross:<model>, maxsim, model:<registry name>): "
              "every method is also evaluated re-ranked, as <method>>rerank.")
@click.option("--rerank-depth", type=int, default=None, help="Hits the re-ranker sees: at least --depth (the default), since every ranked hit is re-ranked; a larger value re-ranks deeper and cuts back to --depth.")
@click.option("--cache", "cache_dir", default=".omniret-eval", show_default=True, type=click.Path())
@click.option("--out", "out_dir", default=None, type=click.Path(), help="Report folder (default <cache>/reports/<dataset>).")
def run_cmd(dataset: str, model: str, methods: str | None, task: str | None, fmt: str | None,
            subset: int | None, index_path: str | None, seed: int, bank_fraction: float | None, depth: int,
            max_queries: int | None, rerank: str | None, rerank_depth: int | None, cache_dir: str,
            out_dir: str | None) -> None:
    """Evaluate DATASET (a prepared folder, an omniret JSONL, or --format) with each method; write a report."""
    from omniret.eval import prepare, runner
    from omniret.eval.report import write_report

    try:
        ds = prepare.load_prepared(dataset, task=task, subset=subset, seed=seed, fmt=fmt)
        default = runner.COMPOSED_METHODS if ds.task == "composed" else \
            runner.PAGE_METHODS if ds.page_level else runner.DEFAULT_METHODS
        chosen = runner.parse_methods(methods) if methods else default
        if bank_fraction is None:
            bank_fraction = 0.5 if any(m.split("+")[0] in runner.BANK_METHODS for m in chosen) else 0.0
        config = runner.EvalConfig(model=model, methods=chosen,
                                   depth=depth, seed=seed, bank_fraction=bank_fraction, cache_dir=cache_dir,
                                   max_queries=max_queries, rerank=rerank, rerank_depth=rerank_depth)
        if index_path is not None:
            result = runner.run_on_index(ds, index_path, config, log=click.echo)
        else:
            result = runner.run_eval(ds, config, log=click.echo)
        out = Path(out_dir) if out_dir else Path(cache_dir) / "reports" / ds.name
        paths = write_report(result, out)
    except OmniretError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"report: {paths['md']}")
