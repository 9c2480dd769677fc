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

from omniret.errors import OmniretError, missing_module_hint
from omniret.items import displayable, is_utf8

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1
EXIT_PROBLEMS = 3  # omniret check: problems remain


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


#: indexes opened by the running command; closed when it ends, also on an error (their SQLite files
#: and WAL are then released at once, not whenever the garbage collector gets to them)
_OPENED: list[Any] = []


def _track(index: Any) -> Any:
    _OPENED.append(index)
    return index


@contextmanager
def _errors(s: Settings) -> Iterator[None]:
    try:
        try:
            yield
        finally:
            while _OPENED:
                _OPENED.pop().close()
    except OmniretError as e:
        if s.debug:
            raise
        echo(f"error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted; everything committed so far is kept", err=True)
        sys.exit(130)
    except Exception as e:  # an omniret bug: one line unless --debug
        if s.debug:
            raise
        if hint := missing_module_hint(e):  # an optional dependency this installation lacks
            echo(f"error: this command {hint}", err=True)
            sys.exit(EXIT_USER_ERROR)
        echo(f"internal error: {type(e).__name__}: {e} (run again with --debug for the traceback)", err=True)
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
        except RecursionError as e:  # "[[[[..." thousands deep
            raise OmniretError(f"--where {key[:40]}=...: the value nests too deeply to parse; compare a flatter "
                               "value (at most 32 levels)") from e
    return out or None


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON (UTF-8 text as is). A file name that is not valid UTF-8 holds lone
    surrogates (``surrogateescape``): they are written as JSON ``\\udcXX`` escapes, which ``json.loads``
    turns back into the same string (and ``os.fsencode`` into the name's bytes), not as ``?``."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if is_utf8(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def echo(text: str, *, err: bool = False) -> None:
    """``click.echo`` of human text that may hold a non-UTF-8 file name (shown with U+FFFD, never a crash)."""
    click.echo(displayable(text), err=err)


def _text_file(path: str, option: str, shape: str) -> str:
    """The text of a file given to ``option`` (a query list, a label list): a binary file, a FIFO, a device or
    an unreadable file is a one-line error naming it and what the option wants, not a crash or a hang."""
    from omniret.errors import MediaError
    from omniret.media.text import read_text_file

    try:
        return read_text_file(path, max_bytes=256 * 2**20)
    except MediaError as e:
        raise OmniretError(f"{option} {e}; give a UTF-8 text file, {shape}") from e


def _emit(s: Settings, obj: Any) -> None:
    click.echo(json_line(obj))


def _open(s: Settings, model: str | None = "auto", *, must_exist: bool = False) -> Any:
    from omniret.index import Index, ensure_index_exists

    if must_exist:
        ensure_index_exists(s.index)
    return _track(Index.open(s.index, model=model, device=s.device, batch_size=s.batch_size,
                             query_cache=s.query_cache))


@contextmanager
def _progress(s: Settings, desc: str, unit: str) -> Iterator[Any]:
    """A tqdm bar on stderr (items/s and ETA), off with --quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, disable=True if s.quiet else None, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != (total or None):  # 0: the total is not known (a stream of rows)
            bar.total = total or None
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
        if not s.query_cache or idx.store.read_only or idx.query_cache().state() != "missing":
            return  # (a read-only index cannot take the export; its searches load the model)
        if not s.quiet:
            click.echo("preparing fast searches for this index's model (once)...", err=True)
        idx.prepare_queries()
    except Exception as e:
        if s.debug:
            raise
        click.echo(f"note: fast searches unavailable ({type(e).__name__}: {e}); searches load the model", err=True)
