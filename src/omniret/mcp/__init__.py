"""The MCP server (Model Context Protocol, for LLM agents): ``omniret mcp`` over stdio or streamable HTTP.

Owns :mod:`~omniret.mcp.tools` (search, get/open item, add, classify, info as plain methods over the
HTTP server's :class:`~omniret.server.service.Service`, so agents get the same root confinement and
path checks), :mod:`~omniret.mcp.server` (the tools registered with the official ``mcp`` SDK, hits as
JSON plus thumbnails as image content) and :mod:`~omniret.mcp.cli` (the command). An app-layer package
above ``server``: may import it and everything below, never ``cli``.
"""
