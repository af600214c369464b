"""Locust's own ceiling on this machine: the same FastHttpUser the mix uses, no think time,
against the bare Starlette app (``loadtests/bare_app.py``)::

    uvicorn loadtests.bare_app:app --port 18777 --no-access-log &
    locust -f loadtests/locust_bare.py --headless -u 64 -r 64 -t 25s \\
        -H http://127.0.0.1:18777 --processes 1 --csv /tmp/bare

The issue expected locust to reach near 9,000 requests/s here; this measures it.
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task

BID = {"market": "ebike:330522", "price_fen_per_t": 1_000_000, "qty_kg": 2_000}


class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def post(self) -> None:
        self.client.post("/bid", json=BID)

    @task
    def get(self) -> None:
        self.client.get("/book")
