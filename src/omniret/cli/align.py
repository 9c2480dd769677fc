"""``omniret align --pairs pairs.jsonl``: few-pair alignment of the offline model's CNN to its text space.

Registered in :mod:`omniret.cli.main`; one call to :meth:`omniret.index.Index.align`.
"""

from __future__ import annotations

import click

from omniret.cli.common import _emit, _errors, _open, _settings


@click.command("align")
@click.option("--pairs", "pairs", required=True, type=click.Path(exists=True, dir_okay=False),
              help='JSONL, one {"image": path, "text": caption} per line (paths relative to the file).')
@click.option("--lambda", "structure_lambda", type=float, default=10.0, show_default=True,
              help="Weight of STRUCTURE's neighbourhood regulariser (0: contrastive only).")
@click.option("--levels", type=click.IntRange(1, 8), default=1, show_default=True, help="STRUCTURE's random-walk levels.")
@click.option("--epochs", type=click.IntRange(0, 10_000), default=40, show_default=True)
@click.option("--mix", type=click.FloatRange(0, 1), default=None,
              help="ConSE weight of image embeddings (default: chosen on held-out pairs).")
@click.option("--imagenet-prompts", is_flag=True, help="Add 1,000 pairs: the classifier's class weights and class prompts.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def align_cmd(ctx: click.Context, pairs: str, structure_lambda: float, levels: int, epochs: int, mix: float | None,
              imagenet_prompts: bool, seed: int) -> None:
    """Learn an image projector from PAIRS (STRUCTURE), re-embed the images, switch to offline+aligned."""
    s = _settings(ctx)
    with _errors(s):
        idx = _open(s, must_exist=True)
        try:
            report = idx.align(pairs, structure_lambda=structure_lambda, levels=levels, epochs=epochs, mix=mix,
                               imagenet_prompts=imagenet_prompts, seed=seed,
                               log=None if (s.quiet or s.json) else click.echo)
        finally:
            idx.close()
        if s.json:
            _emit(s, {"event": "align", **report.to_dict()})
            return
        click.echo(f"aligned on {report.pairs} pairs (mix {report.mix:g}); re-embedded {report.reembedded} items in "
                   f"{report.seconds:.0f}s; the index now uses offline+aligned")
        for uri, reason in report.failed[:20]:
            click.echo(f"  unreadable: {uri}: {reason}")
