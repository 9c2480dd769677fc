"""The ``omniret`` command: click commands, a few lines each over one library call.

Owns :mod:`~omniret.cli.main` (the group, global options, add/search/remove/info/models/demo),
:mod:`~omniret.cli.tasks` (classify, upgrade), :mod:`~omniret.cli.eval` (eval prepare/run),
:mod:`~omniret.cli.common` (settings, error mapping, output, option parsing shared by the commands)
and :mod:`~omniret.cli.demo`. May import everything below it (the facade, the server's ``serve``
command, the evaluation harness); nothing imports it.
"""
