"""Which idempotency keys the writer has committed, in little memory.

A key is kept a day (``key_retention``), so at a few hundred commands a second the
runner would hold millions of them; as ``(principal, key) -> (fingerprint, created)``
tuples of strings that is about half a kilobyte each.  The journal database holds every
key, its fingerprint and its answer anyway, so memory only has to say "maybe known"
without ever saying "unknown" of a known key: a 64-bit digest of the pair, counted (two
pairs may share a digest), and bucketed by the hour it was created in so whole hours can
be forgotten at once.  That is under 100 bytes a key.  A digest hit is confirmed in the
database, which is the rare path (a client's retry); a hit the database does not confirm
is a collision, or a key the database pruned before memory did, and is a new request.
"""

from __future__ import annotations

from array import array

HOUR_US = 3_600_000_000


def digest(principal: str, key: str) -> int:
    """A 64-bit digest of the pair; stable for the life of the process, which is as long
    as the index lives (it is rebuilt from the database at start-up)."""
    return hash((principal, key))


class KeyIndex:
    def __init__(self) -> None:
        self._count: dict[int, int] = {}
        self._hours: dict[int, array[int]] = {}  # hour (created_us // HOUR_US) -> digests

    def __len__(self) -> int:
        return sum(len(digests) for digests in self._hours.values())

    def add(self, principal: str, key: str, created_us: int) -> None:
        d = digest(principal, key)
        self._count[d] = self._count.get(d, 0) + 1
        hour = created_us // HOUR_US
        bucket = self._hours.get(hour)
        if bucket is None:
            bucket = self._hours[hour] = array("q")
        bucket.append(d)

    def maybe_known(self, principal: str, key: str) -> bool:
        return digest(principal, key) in self._count

    def forget_before(self, before_us: int) -> None:
        """Forget the hours that end at or before ``before_us``; a key may so outlive the
        retention by up to an hour here, never the other way round."""
        for hour in [h for h in self._hours if (h + 1) * HOUR_US <= before_us]:
            for d in self._hours.pop(hour):
                left = self._count[d] - 1
                if left:
                    self._count[d] = left
                else:
                    del self._count[d]
