"""HTTP routers, a few lines each: parse, call the :class:`~omniret.server.service.Service`, format."""
