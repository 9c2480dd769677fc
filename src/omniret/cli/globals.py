"""Global options (``--index``, ``--json``, ``--device``, ``-q``, ``--debug``, ``--batch-size``) accepted
after the command as well as before it: ``omniret add --index X DIR`` = ``omniret --index X add DIR``.

The group's own options are the only source of names: :func:`accept_after_command` copies every one of
them onto each subcommand (recursively) as an option with no default and no environment variable, so it
counts only when typed there. Its callback merges the value into the group's parameters and re-runs the
group callback in the subcommand's context, which rebuilds :class:`~omniret.cli.common.Settings` there;
a value after the command therefore wins over one before it. A command that has an option of the same
name (``serve --index``, ``eval run --index``) keeps its own.
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

#: ``ctx.meta`` key holding the group parameters as merged so far for one subcommand context
_MERGED = "omniret.global_params"
_PREFIX = "omniret_global_"


def accept_after_command(group: click.Group) -> None:
    """Copy ``group``'s options onto every subcommand (and their subcommands) that lacks them."""
    shared = [p for p in group.params if isinstance(p, click.Option) and p.expose_value]
    for cmd in _walk(group):
        taken = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for p in shared:
            if not taken.intersection((*p.opts, *p.secondary_opts)) and not _has_copy(cmd, p):
                cmd.params.append(_copy(group, p))


def _walk(group: click.Group) -> list[click.Command]:
    out: list[click.Command] = []
    for cmd in dict.fromkeys(group.commands.values()):  # aliases (index = add) share one command object
        out.append(cmd)
        if isinstance(cmd, click.Group):
            out += _walk(cmd)
    return out


def _has_copy(cmd: click.Command, p: click.Option) -> bool:
    return any(q.name == _PREFIX + str(p.name) for q in cmd.params)


def _copy(group: click.Group, p: click.Option) -> click.Option:
    """The option ``p`` for use after a command: same flags and type, no default, applied by callback."""
    kwargs: dict[str, Any] = {"help": f"{p.help or ''} (global option)".strip(),
                              "expose_value": False, "callback": _apply(group, str(p.name))}
    decls = [*p.opts, *p.secondary_opts]
    if p.is_flag:
        kwargs.update(is_flag=True, default=p.default)
        if p.secondary_opts:  # an on/off pair (--daemon/--no-daemon) stays one switch
            decls = [f"{on}/{off}" for on, off in zip(p.opts, p.secondary_opts, strict=False)]
    else:
        kwargs.update(type=p.type, default=None, metavar=p.metavar)
    return click.Option([_PREFIX + str(p.name), *decls], **kwargs)


def _apply(group: click.Group, name: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if ctx.get_parameter_source(str(param.name)) is not ParameterSource.COMMANDLINE:
            return value
        merged = ctx.meta.get(_MERGED)
        if merged is None:  # the nearest context that ran the group callback holds the values given before
            merged = dict(ctx.find_root().params)
        merged = {**merged, name: value}
        ctx.meta[_MERGED] = merged
        if group.callback is not None:
            ctx.invoke(group.callback, **merged)  # rebuilds ctx.obj (Settings) in this context
        return value

    return callback
