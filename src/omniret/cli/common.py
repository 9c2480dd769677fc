"""Helpers shared by every ``omniret`` CLI module: settings, error mapping, output, opening the index."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from omniret.errors import OmniretError

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


@dataclass(frozen=True)
class Settings:
    """Global options, parsed once (flags ← environment ← defaults)."""

    index: str
    json: bool
    debug: bool
    quiet: bool
    device: str | None
    batch_size: int | None
    query_cache: bool = True
    daemon: bool = True


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(Settings)  # type: ignore[return-value]


@contextmanager
def _errors(s: Settings) -> Iterator[None]:
    try:
        yield
    except OmniretError as e:
        if s.debug:
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted; everything committed so far is kept", err=True)
        sys.exit(130)
    except Exception as e:  # an omniret bug: one line unless --debug
        if s.debug:
            raise
        click.echo(f"internal error: {type(e).__name__}: {e} (run again with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


def silence_third_party_progress() -> None:
    """``-q``: no progress bars from the libraries that load models either ("Loading weights" from
    transformers, download and "Batches" bars from huggingface_hub and sentence-transformers).

    Each library reads its switch when it is imported (HF_HUB_DISABLE_PROGRESS_BARS, which transformers
    follows too; tqdm's TQDM_DISABLE), which the CLI does later, lazily; those already imported are
    switched off through their own functions."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None:
        hub.disable_progress_bars()
    tf_logging = sys.modules.get("transformers.utils.logging")
    if tf_logging is not None:
        tf_logging.disable_progress_bar()


def _parse_where(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    """``--where KEY=VALUE`` pairs → a metadata filter (VALUE parsed as JSON where it can be)."""
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep or not key:
            raise OmniretError(f"--where {p!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out or None


def _emit(s: Settings, obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _open(s: Settings, model: str | None = "auto", *, must_exist: bool = False) -> Any:
    from omniret.index import Index, ensure_index_exists

    if must_exist:
        ensure_index_exists(s.index)
    return Index.open(s.index, model=model, device=s.device, batch_size=s.batch_size, query_cache=s.query_cache)


@contextmanager
def _progress(s: Settings, desc: str, unit: str) -> Iterator[Any]:
    """A tqdm bar on stderr (items/s and ETA), off with --quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, disable=True if s.quiet else None, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()




def _prepare_queries(s: Settings, idx: Any) -> None:
    """Export the index model's query towers when they are missing (once per model), so later searches
    start without torch; a note on stderr unless ``-q``. Never fails the command: searches then load
    the model as before."""
    try:
        if not s.query_cache or idx.query_cache().state() != "missing":
            return
        if not s.quiet:
            click.echo("preparing fast searches for this index's model (once)...", err=True)
        idx.prepare_queries()
    except Exception as e:
        if s.debug:
            raise
        click.echo(f"note: fast searches unavailable ({type(e).__name__}: {e}); searches load the model", err=True)
