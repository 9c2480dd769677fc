"""``omniret serve``: run the HTTP server and web page over an index (uvicorn).

Registered in :mod:`omniret.cli.main` with ``cli.add_command(serve_command)``.
"""

from __future__ import annotations

import os
import sys

import click

from omniret.errors import OmniretError, require_extra
from omniret.server.settings import is_loopback


@click.command("serve")
@click.option("--index", "index_dir", default=None,
              help="Index folder (default: the global --index, $OMNIRET_INDEX, or .omniret).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes the index to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", default=None,
              help="Bearer token for write routes (or $OMNIRET_TOKEN); without one, writes are disabled.")
@click.option("--root", "roots", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Server-side folder POST /items may add paths from (repeatable).")
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 100_000), default=50.0, show_default=True,
              help="Largest request body accepted.")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="Allow cross-origin requests from this origin (repeatable; default: CORS off).")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Also answer requests for this Host name (repeatable; '*.lan' for subdomains, '*' for any). "
                   "Bound to loopback, only localhost/127.0.0.1/::1 are answered by default (DNS-rebinding "
                   "protection).")
@click.option("--model", default=None, help="Model of a new index (default: the index must exist).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def serve_command(ctx: click.Context, index_dir: str | None, host: str, port: int, token: str | None,
                  roots: tuple[str, ...], max_upload_mb: float, cors_origins: tuple[str, ...],
                  allow_hosts: tuple[str, ...], model: str | None, log_level: str) -> None:
    """Serve the index over HTTP: a JSON API (docs at /docs) and a search page at /."""
    try:
        require_extra("omniret serve", "server", ("uvicorn", "fastapi"))
    except OmniretError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    import uvicorn

    from omniret.server.app import create_app
    from omniret.server.settings import ServerSettings

    parent = ctx.find_object(object)
    index = index_dir or getattr(parent, "index", None) or os.environ.get("OMNIRET_INDEX") or ".omniret"
    try:
        settings = ServerSettings.from_options(token=token, roots=roots, max_upload_mb=max_upload_mb,
                                               cors_origins=cors_origins, model=model, bind=host,
                                               allow_hosts=allow_hosts)
        app = create_app(index, settings)
    except OmniretError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if not is_loopback(host):
        click.echo(f"warning: binding {host} makes the index reachable from other machines"
                   + ("" if settings.token else "; reads need no token")
                   + ("" if settings.allowed_hosts else "; any Host name is answered (limit with --allow-host)"),
                   err=True)
    if not settings.writes_enabled:
        click.echo("write routes are disabled (no --token / $OMNIRET_TOKEN)", err=True)
    click.echo(f"omniret serving {index} at http://{host}:{port}/ (API docs at /docs)", err=True)
    from omniret.server.protocol import KEEP_ALIVE_S, header_timeout_protocol

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                server_header=False, http=header_timeout_protocol(), timeout_keep_alive=KEEP_ALIVE_S)
