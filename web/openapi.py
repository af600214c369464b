"""``/openapi.json``, generated from the same registry and msgspec types that validate
requests: the bounds in the schema are the bounds enforced."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from web.api import ENDPOINTS, SHOW
from web.errors import HTTP_CODES
from web.wire import MARKET_PATTERN, Problem

REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"{([a-z_]+)}")
# RFC 3339 date-time with its offset, as the decoder takes it (the format alone lets a
# generator or a reader think that "" or a time without zone would do)
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _pin_date_times(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            node["pattern"] = DATE_TIME_PATTERN
        for value in node.values():
            _pin_date_times(value)
    elif isinstance(node, list):
        for value in node:
            _pin_date_times(value)


def _links(kind: str) -> dict[str, Any]:
    """From what a POST created (its ``id``) to every operation on that object."""
    param = f"{kind}_id"
    return {
        other.name: {"operationId": other.name, "parameters": {param: "$response.body#/id"}}
        for other in ENDPOINTS
        if "{" + param + "}" in other.path
    }


def build() -> dict[str, Any]:
    types: list[Any] = [Problem]
    for ep in ENDPOINTS:
        for t in (ep.body, ep.answers):
            if t is not None and t not in types:
                types.append(t)
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    ref_of = dict(zip(types, refs, strict=True))
    _pin_date_times(components)
    for t in types:  # what a type's own checks add to its fields' bounds
        components[t.__name__].update(getattr(t, "__schema_extra__", {}))
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        op: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary}
        params = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]{1,15}$"}
                if n.endswith("_id")
                else {"type": "string", "pattern": MARKET_PATTERN},
            }
            for n in _PARAM.findall(ep.path)
        ]
        params += [{"in": "query", **q} for q in ep.query]
        if ep.method == "POST":
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,255}$"},
                }
            )
        if ep.method == "GET" and ep.answers is not None and ep.answers.__name__ == "Page":
            params += [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                },
                {
                    "name": "offset",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                },
            ]
        if params:
            op["parameters"] = params
        if ep.body is not None:
            op["requestBody"] = {
                "required": ep.body.__name__ != "Empty",
                "content": {"application/json": {"schema": ref_of[ep.body]}},
            }
        if not ep.public:
            op["security"] = [{"bearer": []}]
        responses: dict[str, Any] = {}
        for status in ep.statuses:
            if status < 400:
                content = (
                    {"application/json": {"schema": ref_of[ep.answers]}}
                    if ep.answers
                    else {"application/json": {"schema": {"type": "object"}}}
                )
                responses[str(status)] = {"description": "OK", "content": content}
                if status == 201 and ep.creates:
                    responses["201"]["links"] = _links(ep.creates)
                    if f"{ep.creates}_id" in SHOW:
                        responses["201"]["headers"] = {
                            "Location": {
                                "description": "where to read it",
                                "schema": {"type": "string"},
                            }
                        }
            else:
                responses[str(status)] = {
                    "description": "problem",
                    "content": {"application/problem+json": {"schema": ref_of[Problem]}},
                }
        op["responses"] = responses
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Waste lead-acid battery auction engine",
            "version": "0.1.0",
            "description": "Prices in fen per tonne, weights in kg. Errors: "
            + ", ".join(sorted(HTTP_CODES)),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
