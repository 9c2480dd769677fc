"""Test data of the MCP tests (its own module name: ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220)}
NOTES = {"rockets.md": "# Rockets\n\nA rocket launch sends satellites into orbit around the earth.",
         "cooking.txt": "Boil the pasta in salted water, then add tomato sauce and basil."}
