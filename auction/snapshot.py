"""Engine snapshots: written whole to a temporary file, then switched in atomically.

Layout: ``MAGIC | seq (8 bytes) | length (8) | sha256 (32) | pickle of the engine``.  A
snapshot whose length or checksum does not match (torn by a crash, truncated, edited)
is ignored, and the engine is rebuilt from the journal alone.  Snapshots are our own
files, written and read by this process only.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
from pathlib import Path

from auction.engine import Engine
from auction.faults import fault

MAGIC = b"AUCSNAP1"
_HEADER = struct.Struct(">QQ32s")


def write(path: Path, engine: Engine, seq: int) -> None:
    body = pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)
    header = MAGIC + _HEADER.pack(seq, len(body), hashlib.sha256(body).digest())
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header)
        half = len(body) // 2
        f.write(body[:half])
        f.flush()
        fault("mid_snapshot")
        f.write(body[half:])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path) -> tuple[int, Engine] | None:
    """``(seq, engine)`` from a whole snapshot, or None if there is none or it is torn."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    head = len(MAGIC) + _HEADER.size
    if len(data) < head or not data.startswith(MAGIC):
        return None
    seq, length, digest = _HEADER.unpack(data[len(MAGIC) : head])
    body = data[head:]
    if len(body) != length or hashlib.sha256(body).digest() != digest:
        return None
    engine = pickle.loads(body)
    if not isinstance(engine, Engine):
        return None
    return seq, engine
