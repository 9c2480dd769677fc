"""``omniret export`` / ``omniret import``: an index to and from one Parquet file (items, metadata,
vectors), thin commands over :meth:`omniret.index.Index.export_parquet` / ``import_parquet``.
Registered in :mod:`omniret.cli.main`."""

from __future__ import annotations

import os

import click

from omniret.cli.common import _emit, _errors, _settings


@click.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--space", "spaces", multiple=True,
              help="Only these vector spaces (repeatable; default: all; `omniret info` lists them).")
@click.pass_context
def export_cmd(ctx: click.Context, out: str, spaces: tuple[str, ...]) -> None:
    """Write the index's items, metadata and vectors to OUT (Parquet: LanceDB, Milvus, pandas read it)."""
    from omniret.index import Index, ensure_index_exists

    s = _settings(ctx)
    with _errors(s):
        ensure_index_exists(s.index)
        with Index.open(s.index, model=None, device=s.device) as idx:
            report = idx.export_parquet(out, spaces=list(spaces) or None)
        if s.json:
            _emit(s, {"event": "export", **report.to_dict()})
        else:
            per = ", ".join(f"{n} in {col}" for col, n in zip(report.columns, report.vectors.values(), strict=True))
            click.echo(f"exported {report.items} items ({per or 'no vectors'}) to {report.path} "
                       f"in {report.seconds:.1f}s")


@click.command("import")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", default=None,
              help="Model of a new index (default: the model the file was exported from).")
@click.pass_context
def import_cmd(ctx: click.Context, src: str, model: str | None) -> None:
    """Upsert the items and vectors of SRC (a file written by `omniret export SRC.parquet`) into the index."""
    from omniret.index import Index
    from omniret.tasks.exchange import read_header

    s = _settings(ctx)
    with _errors(s):
        exported, _, _ = read_header(src)
        is_new = "://" not in s.index and not os.path.exists(os.path.join(s.index, "omniret.db"))
        name = model or ((exported.get("encoder") or {}).get("name") if is_new else None)
        with Index.open(s.index, model=name, device=s.device, batch_size=s.batch_size) as idx:
            report = idx.import_parquet(src)
        if s.json:
            _emit(s, {"event": "import", "index": s.index, **report.to_dict()})
            return
        click.echo(f"imported {report.items} items ({report.new} new, {report.changed} replaced) "
                   f"in {report.seconds:.1f}s")
        for rid, reason in report.failed[:50]:
            click.echo(f"  {rid}: {reason}")
