"""``omniret mcp``: serve the index to LLM agents over the Model Context Protocol (stdio or streamable
HTTP). Registered in :mod:`omniret.cli.main`."""

from __future__ import annotations

import os
import sys

import click

from omniret.errors import OmniretError, require_extra


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio: the client starts this command; http: streamable HTTP at http://HOST:PORT/mcp.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="HTTP: port.")
@click.option("--token", default=None, help="HTTP: bearer token every request must carry (or $OMNIRET_TOKEN).")
@click.option("--root", "roots", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder the add tool may index files from (repeatable); without one, add and classify "
                   "--write are refused.")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="HTTP: Host header values answered besides the loopback names ('*': any).")
@click.option("--model", default=None, help="Model of a new index (default: the index must exist).")
@click.pass_context
def mcp_command(ctx: click.Context, transport: str, host: str, port: int, token: str | None,
                roots: tuple[str, ...], allow_hosts: tuple[str, ...], model: str | None) -> None:
    """Serve the index to agents (MCP): search, get/open item, add, classify, info."""
    try:  # the HTTP server's Service is used on either transport
        require_extra("omniret mcp", "mcp", ("mcp", "fastapi", *(("uvicorn",) if transport == "http" else ())))
    except OmniretError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    from omniret.index import Index, ensure_index_exists
    from omniret.mcp.server import build_server, http_app
    from omniret.mcp.tools import Tools
    from omniret.server.service import Service
    from omniret.server.settings import ServerSettings

    parent = ctx.find_object(object)
    index = getattr(parent, "index", None) or os.environ.get("OMNIRET_INDEX") or ".omniret"
    try:
        token = token or os.environ.get("OMNIRET_TOKEN") or None
        settings = ServerSettings.from_options(token=token, roots=roots, model=model,
                                               bind=host if transport == "http" else None, allow_hosts=allow_hosts)
        if model is None:
            ensure_index_exists(index)
        idx = Index.open(index, model=model or "auto", device=getattr(parent, "device", None))
    except OmniretError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    service = Service(idx, settings, owns_index=True)
    server = build_server(Tools(service))
    try:
        if transport == "stdio":
            server.run("stdio")
            return
        import uvicorn

        from omniret.server.settings import is_loopback

        if not is_loopback(host):
            click.echo(f"warning: binding {host} makes the index reachable from other machines"
                       + ("" if token else "; give --token to require a bearer token"), err=True)
        click.echo(f"omniret MCP server for {index} at http://{host}:{port}/mcp", err=True)
        app = http_app(server, host=host, token=token, allowed_hosts=settings.allowed_hosts)
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        service.close()
