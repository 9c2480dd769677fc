"""``omniret classify`` and ``omniret upgrade``: thin click commands over :mod:`omniret.tasks.classify`
and :mod:`omniret.tasks.upgrade`. Registered in :mod:`omniret.cli.main` with ``cli.add_command(...)``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click

from omniret.cli.common import _emit, _errors, _open, _parse_where, _settings, _text_file, echo
from omniret.errors import OmniretError


def _labels(labels: str | None, labels_file: str | None) -> list[str]:
    if (labels is None) == (labels_file is None):
        raise OmniretError("give the label set with --labels cat,dog,... or --labels-file FILE (one label a line)")
    if labels is not None:
        return [x.strip() for x in labels.split(",") if x.strip()]
    text = _text_file(labels_file or "", "--labels-file", "one label per line")
    return [x.strip() for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]


def _descriptions(path: str | None) -> dict[str, list[str]] | str | None:
    from omniret.methods.prompts import DESCRIPTION_SETS

    if path is None:
        return None
    if path in DESCRIPTION_SETS and not Path(path).exists():
        return path  # a shipped set, e.g. "sounds"
    try:
        data = json.loads(_text_file(path, "--descriptions", "a JSON object label -> list of sentences"))
    except (RecursionError, json.JSONDecodeError) as e:
        raise OmniretError(f"--descriptions {path}: cannot read it as JSON ({e}); give {{label: [sentences]}}") from e
    if not isinstance(data, dict):
        raise OmniretError(f"--descriptions {path}: expected a JSON object label -> list of sentences")
    return {str(k): [v] if isinstance(v, str) else list(v) for k, v in data.items()}


@click.command("classify")
@click.argument("files", nargs=-1)
@click.option("--labels", default=None, help="Comma-separated labels: cat,dog,car.")
@click.option("--labels-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A file with one label a line.")
@click.option("--descriptions", default=None,
              help="JSON file {label: [sentences]} of class descriptions (CuPL / ReCLAP style), or 'sounds' "
                   "for the shipped descriptions of common sounds.")
@click.option("--templates", type=click.Choice(["auto", "clip80", "sound", "none"]), default="auto", show_default=True,
              help="Prompt templates: auto (CLIP's 80 for images and text, sound templates for audio in the "
                   "audio model's space), the 80 CLIP templates, sound templates, or the bare label.")
@click.option("--wordnet", is_flag=True, help="Add WordNet glosses (needs nltk's wordnet data; skipped if absent).")
@click.option("-k", "--k", "k", type=click.IntRange(1, 1000), default=1, show_default=True, help="Labels per item.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Keep only labels with at least this probability (multi-label tagging).")
@click.option("--temperature", type=float, default=100.0, show_default=True, help="Softmax temperature.")
@click.option("--modality", multiple=True, help="Only items of these modalities (repeatable).")
@click.option("--where", multiple=True, help="Metadata equality KEY=VALUE (repeatable).")
@click.option("--write", is_flag=True,
              help="Store the labels in item metadata (class, classes, class_probs) to filter by: "
                   "search --where class=cat.")
@click.option("--key", default="class", show_default=True,
              help="Metadata key --write stores the best label under (plus KEYs/KEYes and KEY_probs).")
@click.pass_context
def classify_cmd(ctx: click.Context, files: tuple[str, ...], labels: str | None, labels_file: str | None,
                 descriptions: str | None, templates: str, wordnet: bool, k: int, threshold: float | None,
                 temperature: float, modality: tuple[str, ...], where: tuple[str, ...], write: bool,
                 key: str) -> None:
    """Zero-shot labels for the indexed items, or for FILES (not indexed)."""
    from omniret.tasks.classify import classify

    s = _settings(ctx)
    with _errors(s), warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        label_set = _labels(labels, labels_file)
        idx = _open(s, must_exist=True)
        try:
            results = classify(idx, label_set, files=list(files) or None, k=k, threshold=threshold,
                               templates=templates, descriptions=_descriptions(descriptions),
                               glosses="wordnet" if wordnet else None, temperature=temperature,
                               modality=list(modality) or None, where=_parse_where(where), write=write, key=key)
        finally:
            idx.close()
        for n in notes:
            click.echo(f"note: {n.message}", err=True)
        for r in results:
            if s.json:
                _emit(s, r.to_dict())
            else:
                tags = ", ".join(f"{lab} {p:.3f}" for lab, p in r.labels) or "-"
                echo(f"{r.uri}{'' if r.id is None else '  [' + r.id + ']'}: {tags}")
        if not results and not s.json:
            click.echo("nothing to classify")


@click.command("upgrade")
@click.option("--to", "to", default=None, help="The new model (see `omniret models`).")
@click.option("--method", type=click.Choice(["lstsq", "procrustes"]), default="lstsq", show_default=True)
@click.option("--pairs", type=click.IntRange(3, 1_000_000), default=2000, show_default=True,
              help="Items embedded by both models to fit the map.")
@click.option("--holdout", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of pairs kept out of the fit to report recall.")
@click.option("--resume", is_flag=True, help="Re-embed items with the new model (resumable), then switch over.")
@click.option("--limit", type=click.IntRange(0), default=None, help="With --resume: stop after N items.")
@click.option("--drop-old", is_flag=True, help="With --resume: delete the old vectors after the switch-over.")
@click.option("--abort", is_flag=True,
              help="Leave the upgrade in progress: drop the map and the vectors re-embedded so far.")
@click.pass_context
def upgrade_cmd(ctx: click.Context, to: str | None, method: str, pairs: int, holdout: float, resume: bool,
                limit: int | None, drop_old: bool, abort: bool) -> None:
    """Move the index to a new model: map first (--to), re-embed later (--resume), or --abort."""
    from omniret.tasks.upgrade import abort_upgrade, fit_upgrade, resume_upgrade

    s = _settings(ctx)
    with _errors(s):
        if sum((to is not None, resume, abort)) != 1:
            raise OmniretError("give --to MODEL to fit the map, --resume to re-embed and switch over, "
                               "or --abort to leave the upgrade in progress")
        idx = _open(s, must_exist=True)
        try:
            if abort:
                done = abort_upgrade(idx)
            elif to is not None:
                report: Any = fit_upgrade(idx, to, method=method, pairs=pairs, holdout=holdout)  # type: ignore[arg-type]
            else:
                report = resume_upgrade(idx, limit=limit, drop_old=drop_old)
        finally:
            idx.close()
        if abort:
            if s.json:
                _emit(s, {"event": "abort", **done})
            else:
                click.echo(f"aborted the upgrade to {done['aborted']} ({done['state']}; {done['dropped_vectors']} "
                           "re-embedded vector(s) dropped); queries use the index's own model again")
            return
        out = report.to_dict()
        if s.json:
            _emit(s, {"event": "upgrade" if to else "resume", **out})
        elif to is not None:
            click.echo(f"mapped {to} into the index's space from {out['pairs']} pairs ({out['held_out']} held out)")
            for name, rec in out["recall"].items():
                click.echo(f"  {name}: " + "  ".join(f"R@{k} {v:.3f}" for k, v in rec.items()))
            click.echo("queries now use the new model; run `omniret upgrade --resume` to re-embed the items")
        else:
            click.echo(f"re-embedded {out['embedded']} item(s); {out['remaining']} left"
                       + ("; switched to the new model" if out["switched"] else ""))
            for f in out["failed"][:50]:
                echo(f"  {f['uri']}: {f['reason']}")
