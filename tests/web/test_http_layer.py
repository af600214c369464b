"""The lean HTTP layer (``web/http.py``) against what Starlette would do in its place."""

from __future__ import annotations

import random

from starlette.routing import Match, Route

from tests.web.conftest import Service
from web.app import create_app
from web.http import PathApp, PathTable


def _starlette_match(routes: list[Route], path: str) -> tuple[object, dict[str, str]] | None:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in routes:
        match, child = route.matches(scope)
        if match != Match.NONE:
            return route.app, child["path_params"]
    return None


def test_the_path_table_routes_as_starlette_does() -> None:
    """The templates, filled and varied with the API's own vocabulary (literals of every
    template, ids, market codes, empty and odd segments; a segment swapped, added or
    dropped): the same app and parameters as Starlette's router, or no match on both."""
    app = create_app()
    routes = [r for r in app.routes if isinstance(r, Route) and isinstance(r.app, PathApp)]
    table: PathTable = app.table
    words = sorted({p for r in routes for p in r.path.split("/") if p and not p.startswith("{")})
    words += ["", "1", "007", "999999999999999", "ebike:330522", "x y", "%2F", "..", "mine"]
    rng = random.Random(20261127)
    paths = [r.path.replace("{", "").replace("}", "") for r in routes]
    for _ in range(20_000):
        parts = rng.choice(routes).path.split("/")  # a route's template, then varied:
        parts = [rng.choice(words) if p.startswith("{") or rng.random() < 0.1 else p for p in parts]
        if rng.random() < 0.2:
            parts.insert(rng.randint(1, len(parts)), rng.choice(words))
        if rng.random() < 0.2 and len(parts) > 2:
            del parts[rng.randint(1, len(parts) - 1)]
        paths.append("/".join(parts))
    hits = 0
    for path in paths:
        mine = table.match(path)
        theirs = _starlette_match(routes, path)
        assert (mine[0], mine[1]) == theirs if mine else theirs is None, path
        hits += mine is not None
    assert 5_000 < hits < 19_000  # both matches and misses were tried


def test_head_answers_as_get_without_a_body(service: Service) -> None:
    headers = service.headers("ra", key=False)
    got = service.client.get("/v1/markets", headers=headers)
    head = service.client.head("/v1/markets", headers=headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]


def test_query_and_header_repeats_read_as_starlette_reads_them(service: Service) -> None:
    # a repeated query parameter: the last one counts (Starlette's QueryParams.get)
    resp = service.client.get(
        "/v1/markets/ebike:330522/book?depth=0&depth=2", headers=service.headers("ra", False)
    )
    assert resp.status_code == 200
    # a repeated header: the first one counts (Starlette's Headers.get)
    good = service.tokens["ra"]
    resp = service.client.get(
        "/v1/markets",
        headers=[("Authorization", f"Bearer {good}"), ("Authorization", "Bearer nope")],
    )
    assert resp.status_code == 200
    resp = service.client.get(
        "/v1/markets",
        headers=[("Authorization", "Bearer nope"), ("Authorization", f"Bearer {good}")],
    )
    assert resp.status_code == 401
