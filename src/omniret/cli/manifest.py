"""``omniret add data.parquet --image-col url --text-col caption``: manifests and WebDataset shards
through ``add``.

:func:`extend_add` gives the ``add`` command (defined in :mod:`omniret.cli.main`) the column options
and routes a call whose paths are manifests (``.parquet``, ``.csv``, ``.tsv``, ``.jsonl``) or
WebDataset shards (``.tar``) to :meth:`omniret.index.Index.add_manifest`; every other call reaches
``add`` unchanged. A column option given with paths that are not manifests is an error.
"""

from __future__ import annotations

from typing import Any

import click

from omniret.cli.common import _emit, _errors, _progress, _settings
from omniret.errors import OmniretError

_COLUMN_OPTIONS = (
    ("--image-col", "image_col", "Manifest column with image URLs or paths (img2dataset: url; clip-retrieval: image_path)."),
    ("--text-col", "text_col", "Manifest column with the caption or text."),
    ("--audio-col", "audio_col", "Manifest column with audio URLs or paths."),
    ("--id-col", "id_col", "Manifest column with your ids (default: <file>#<row>)."),
    ("--uri-col", "uri_col", "Manifest column with the URI shown in hits (default: the image/audio column)."),
    ("--meta-cols", "metadata_cols", "Comma-separated columns kept as metadata (default: all others)."),
)
_FETCH_OPTIONS = (
    ("--fetch-max-mb", "fetch_max_mb", click.FloatRange(0.001, 100_000), 50.0, "Largest URL download (MB)."),
    ("--fetch-timeout", "fetch_timeout", click.FloatRange(0.1, 3600), 30.0, "Seconds a URL download may take."),
)


def extend_add(add: click.Command) -> None:
    """Give ``add`` the manifest options and route manifest paths to :func:`add_manifests`."""
    for flag, name, help_text in _COLUMN_OPTIONS:
        add.params.append(click.Option([flag, name], default=None, help=help_text))
    for flag, name, typ, default, help_text in _FETCH_OPTIONS:
        add.params.append(click.Option([flag, name], type=typ, default=default, show_default=True, help=help_text))
    plain = add.callback
    assert plain is not None

    def callback(*args: Any, **kwargs: Any) -> Any:
        cols = {name: kwargs.pop(name) for _, name, _ in _COLUMN_OPTIONS}
        fetch = {name: kwargs.pop(name) for _, name, _, _, _ in _FETCH_OPTIONS}
        from omniret.sources.manifest import is_manifest

        paths = kwargs.get("paths") or ()
        manifests = [p for p in paths if is_manifest(p)]
        if manifests and len(manifests) == len(paths):
            return add_manifests(click.get_current_context(), manifests, cols, fetch, kwargs)
        if any(v is not None for v in cols.values()):
            with _errors(_settings(click.get_current_context())):
                raise OmniretError("--image-col/--text-col/... read manifests (.parquet, .csv, .tsv, .jsonl) and "
                                   f"WebDataset shards (.tar); {', '.join(p for p in paths if not is_manifest(p))} "
                                   "is not one: add files and folders in a separate call")
        return plain(*args, **kwargs)

    add.callback = callback


def add_manifests(ctx: click.Context, paths: list[str], cols: dict[str, Any], fetch: dict[str, Any],
                  add_args: dict[str, Any]) -> None:
    """The manifest form of ``add``: rows → records → :meth:`Index.add_manifest`."""
    from omniret.index import Index
    from omniret.ingest.work import IngestOptions

    s = _settings(ctx)
    with _errors(s):
        if cols["metadata_cols"] is not None:
            cols["metadata_cols"] = [c.strip() for c in cols["metadata_cols"].split(",") if c.strip()]
        idx = Index.open(s.index, model=add_args.get("model", "auto"), audio_model=add_args.get("audio_model"),
                         device=s.device, batch_size=s.batch_size)
        opts = IngestOptions(workers=add_args.get("workers"), **({"batch_size": s.batch_size} if s.batch_size else {}))
        try:
            with _progress(s, "adding", "row") as bar:
                report = idx.add_manifest(paths, **cols, options=opts, progress=bar,
                                          fetch_max_bytes=int(fetch["fetch_max_mb"] * 1024 * 1024),
                                          fetch_timeout=fetch["fetch_timeout"])
        finally:
            idx.close()
        if s.json:
            _emit(s, {"event": "add", "index": s.index, "model": idx.encoder.name, **report.to_dict()})
            return
        click.echo(f"model {idx.encoder.name}: {report.new} new, {report.changed} changed, {report.unchanged} "
                   f"unchanged rows; {report.items} items written in {report.seconds:.1f}s")
        if report.failed:
            click.echo(f"failed {len(report.failed)} row(s):")
            for rid, reason in report.failed[:50]:
                click.echo(f"  {rid}: {reason}")
