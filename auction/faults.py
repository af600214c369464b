"""Fault points for crash tests: ``AUCTION_FAULTS="before_commit:3"`` makes the process
exit abruptly (``os._exit``, no clean-up, like ``kill -9``) the 3rd time it reaches the
named point.  Several points: ``"before_commit:3,mid_snapshot:1"``.  Unset: free.

Points: ``before_commit`` (batch applied in memory, journal not committed),
``after_commit`` (journal committed, replies not sent), ``mid_snapshot`` (half a snapshot
written).
"""

from __future__ import annotations

import os
import sys

EXIT_CODE = 137

_armed: dict[str, int] = {}
for _part in filter(None, os.environ.get("AUCTION_FAULTS", "").split(",")):
    _name, _, _n = _part.partition(":")
    _armed[_name.strip()] = int(_n or 1)


def fault(name: str) -> None:
    """Count one pass through ``name``; die here if this is the armed pass."""
    if not _armed or name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] == 0:
        sys.stderr.write(f"auction: fault point {name} reached, exiting\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
