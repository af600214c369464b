"""The screens: ``/`` quote board, ``/store`` and ``/recycler``, as static files.

No build step and no CDN: plain HTML, CSS and ES modules from ``web/static``, which use
only the public API and ``/v1/ws`` (see ``static/common.js``).  Each page answers with a
strict Content-Security-Policy: scripts, styles and connections from this service only.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "board.html", "/store": "store.html", "/recycler": "recycler.html"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


INCLUDE = re.compile(r"[ ]*<!--#include (_[a-z]+\.html)-->\n")


def render(name: str) -> bytes:
    """A page with its ``<!--#include _part.html-->`` lines replaced by the parts the
    pages share (the sign-in form, the clock and feed badge): done once, at start."""
    text = (STATIC / name).read_text(encoding="utf-8")
    return INCLUDE.sub(lambda m: (STATIC / m.group(1)).read_text(encoding="utf-8"), text).encode()


def _page(name: str) -> Route:
    body = render(name)

    async def page(request: Request) -> Response:
        return Response(body, media_type="text/html; charset=utf-8", headers=HEADERS)

    path = next(p for p, n in PAGES.items() if n == name)
    return Route(path, page, methods=["GET"], name=f"page:{name.removesuffix('.html')}")


def page_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [_page(name) for name in PAGES.values()]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))
    return routes
