"""The API's OpenAPI 3.1 document (``/api/openapi.json``) and a readable page made from it (``/api/docs``).

The page is rendered on the server from the same document, with the site's own
stylesheet: no script, nothing from another host, headings and tables a screen reader
can walk. Both are public, as the API's shape is no secret (every call needs a token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, render_template

bp = Blueprint("api_docs", __name__, url_prefix="/api")

METHODS = ("get", "post", "put", "patch", "delete")


def document() -> dict[str, Any]:
    """The OpenAPI document of this app's API, as a dict."""
    spec: dict[str, Any] = current_app.extensions["chatroom.api"].spec.to_dict()
    return spec


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document, generated from the code (schemas, routes, docstrings)."""
    body = json.dumps(document(), indent=2, ensure_ascii=False)
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@dataclass
class Field:
    """One property or parameter as the page lists it."""

    name: str
    type: str
    required: bool
    description: str
    where: str = ""


@dataclass
class Operation:
    """One operation as the page shows it."""

    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Field] = field(default_factory=list)
    body: str | None = None  # the request body's schema name or type
    body_fields: list[Field] = field(default_factory=list)
    responses: list[tuple[str, str, str]] = field(default_factory=list)  # (status, description, content)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A schema's type in words: ``string (date-time)``, ``list of Room``, ``integer or null``, ``Room``."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " or ".join(type_of(part) for part in schema[combinator])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = []
    for kind in kinds:
        if kind == "array":
            words.append("list of " + type_of(schema.get("items", {})))
        elif kind == "object" and "additionalProperties" in schema:
            words.append("object of " + type_of(schema["additionalProperties"]))
        else:
            words.append(str(kind))
    text = " or ".join(words)
    if "format" in schema:
        text += f" ({schema['format']})"
    if "enum" in schema:
        text += ": one of " + ", ".join(str(v) for v in schema["enum"])
    if "pattern" in schema:
        text += f", matching {schema['pattern']}"
    if "minimum" in schema or "maximum" in schema:
        text += f", {schema.get('minimum', '…')} to {schema.get('maximum', '…')}"
    return text


def fields_of(schema: dict[str, Any], spec: dict[str, Any]) -> list[Field]:
    """The properties of an object schema (following one ``$ref``)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"].get(_ref_name(schema["$ref"]), {})
    required = set(schema.get("required", []))
    return [
        Field(name, type_of(prop), name in required, str(prop.get("description", "")))
        for name, prop in schema.get("properties", {}).items()
    ]


def _response(spec: dict[str, Any], response: dict[str, Any]) -> tuple[str, str]:
    if "$ref" in response:
        response = spec["components"]["responses"].get(_ref_name(response["$ref"]), {})
    content = response.get("content", {})
    parts = [f"{media}: {type_of(body.get('schema', {}))}" for media, body in content.items()]
    return str(response.get("description", "")), "; ".join(parts)


def operations(spec: dict[str, Any]) -> dict[str, list[Operation]]:
    """The document's operations by tag, in the order the code declares them."""
    tagged: dict[str, list[Operation]] = {}
    for path, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            entry = Operation(
                method=method.upper(),
                path=path,
                summary=str(op.get("summary", "")),
                description=str(op.get("description", "")),
                anchor=f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
            )
            for param in [*shared, *op.get("parameters", [])]:
                entry.parameters.append(
                    Field(
                        param["name"],
                        type_of(param.get("schema", {})),
                        bool(param.get("required")),
                        str(param.get("description", "")),
                        param.get("in", ""),
                    )
                )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                entry.body = type_of(body)
                entry.body_fields = fields_of(body, spec)
            for status, response in sorted(op.get("responses", {}).items(), key=lambda kv: (kv[0] == "default", kv[0])):
                description, content = _response(spec, response)
                entry.responses.append((status, description, content))
            for tag in op.get("tags", ["Other"]):
                tagged.setdefault(tag, []).append(entry)
    return tagged


@bp.get("/docs")
def page() -> str:
    """The API reference, as one accessible page rendered on the server from the OpenAPI document."""
    spec = document()
    schemas = {name: fields_of(schema, spec) for name, schema in spec.get("components", {}).get("schemas", {}).items()}
    return render_template("api/docs.html", spec=spec, tagged=operations(spec), schemas=schemas)
