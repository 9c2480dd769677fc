"""``omniret`` with the test encoders registered (fake, fake-clap): the command an MCP client starts."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TESTS), str(TESTS / "routing"), str(TESTS / "media2")]

from omniret.encoders.registry import EncoderEntry, register  # noqa: E402

register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))
register(EncoderEntry("fake-clap", "fake_clap:create", "fake CLAP (audio + text) for tests", "fake-clap"))

if __name__ == "__main__":
    from omniret.cli.main import main

    main()
