"""Helpers for the server tests (a unique module name, imported by the tests and conftest)."""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

TOKEN = "test-token-0123456789"
COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230), "yellow": (240, 230, 20)}
NOTES = {
    "cats.txt": "Cats are small furry animals. A cat likes to sleep in the sun.",
    "rockets.md": "# Rockets\n\nA rocket launch sends satellites into orbit around the earth.",
    "cooking.txt": "Boil the pasta in salted water, then add tomato sauce and basil.",
}


def make_image(path: Path, color: tuple[int, int, int], size: int = 64, stripe: bool = False) -> Path:
    arr = np.zeros((size, size, 3), dtype=np.uint8)
    arr[:] = color
    if stripe:
        arr[: size // 2] = 255 - np.asarray(color, dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def png_bytes(color: tuple[int, int, int], size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), color, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def build_corpus(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for name, rgb in COLORS.items():
        make_image(root / f"{name}.png", rgb, stripe=(name == "blue"))
    for name, text in NOTES.items():
        (root / "sub" / name).write_text(text, encoding="utf-8")
    return root


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving an app in a thread on a free loopback port."""

    def __init__(self, app: object, **config_kwargs: object) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                **config_kwargs)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
