"""The OpenAPI 3.1 document, built from the declared routes and their pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

import app
from app.api.routing import Endpoint, File
from app.errors import STATUS_CODES, ErrorResponse

REF = "#/components/schemas/{model}"


def _schema(tp: Any, defs: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    return schema


def _operation(ep: Endpoint, defs: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}}
        for name in ep.path_params
    ]
    if ep.query is not None:
        qschema = _schema(ep.query, defs, "validation")
        required = set(qschema.get("required", []))
        for name, prop in qschema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required,
                           "schema": prop})
    op: dict[str, Any] = {
        "operationId": ep.handler.__name__,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": params,
        "responses": {},
    }
    if ep.description:
        op["description"] = ep.description
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema(ep.body, defs, "validation")}}}
    if isinstance(ep.response, File):
        op["responses"][str(ep.status)] = {"description": "OK", "content": {
            ep.response.media_type: {"schema": {"type": "string", "format": "binary"}}}}
    elif ep.response is not None:
        op["responses"][str(ep.status)] = {"description": "OK", "content": {
            "application/json": {"schema": _schema(ep.response, defs, "serialization")}}}
    else:
        op["responses"]["204" if ep.status == 200 else str(ep.status)] = {
            "description": "Done, no content"}
    errors = set(ep.errors)
    if ep.roles is not None:
        errors.add(401)
        op["security"] = [{"bearer": []}]
        if ep.roles:
            errors.add(403)
    if ep.body is not None:
        errors.update((400, 413))
    # Every route refuses query parameters it does not know (routing._aiohttp_handler), so
    # every route can answer 422, with or without a body or query model.
    errors.add(422)
    if ep.path_params:
        errors.add(404)
    for status in sorted(errors):
        op["responses"][str(status)] = {
            "description": STATUS_CODES.get(status, "error"),
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}
            },
        }
    return op


def build_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    _, error_defs = models_json_schema([(ErrorResponse, "serialization")], ref_template=REF)
    defs: dict[str, Any] = dict(error_defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hoichan API",
            "version": app.__version__,
            "description": "Telemedicine consultation platform: scheduling, auth, audit.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
