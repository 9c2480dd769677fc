"""Content hashing of source files: streaming BLAKE2b.

BLAKE2b (Aumasson et al., RFC 7693) is faster than SHA-256 in software on 64-bit CPUs and is in the
standard library. Files are streamed with :func:`hashlib.file_digest` (zero-copy reads into a
buffer), so memory stays constant for any file size. A 128-bit digest is plenty to tell whether
one file's bytes changed; it is not used as a global identity.
"""

from __future__ import annotations

import hashlib
import os

from omniret.errors import MediaError

#: Digest size in bytes (hex string of twice this length).
DIGEST_SIZE = 16


def _blake2b() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=DIGEST_SIZE)


def hash_bytes(data: bytes) -> str:
    """BLAKE2b-128 hex digest of ``data`` (the same value :func:`hash_file` gives for a file of these bytes)."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 hex digest of the file's bytes, read in a streaming way.

    Raises :class:`MediaError` with a short reason when the file vanished or cannot be read.
    """
    from omniret.media._io import open_binary  # one mapping of OS errors to reasons for every reader

    uri = os.fspath(path)
    with open_binary(uri) as f:
        try:
            return hashlib.file_digest(f, _blake2b).hexdigest()
        except OSError as e:
            raise MediaError(uri, f"cannot read file ({e.strerror or e})") from e
