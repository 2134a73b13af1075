"""The browser's copy of the room protocol, generated: frontend/src/wire/protocol.ts.

pydantic turns the payload models of schemas.py (every client event's, from the event table,
and the server events the browser reads its state from) into one JSON Schema; the npm
package json-schema-to-typescript (frontend/scripts/wire-types.mjs) turns that into
TypeScript. ``ClientEvents`` maps each client event to its payload, ``ServerEvents`` each
server event listed below to its own.

    make wire-types                      # or: python -m signaling.wire_types
    python -m signaling.wire_types --check

tests/signaling/test_wire_types.py regenerates the file and fails while the checked-in one
differs, so a model changed without ``make wire-types`` never lands.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .schemas import ControlChanged, PointerOut, SharedViewer

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
OUTPUT = FRONTEND / "src" / "wire" / "protocol.ts"
SCRIPT = FRONTEND / "scripts" / "wire-types.mjs"
COMMAND = "make wire-types"

#: The server → client events whose payload is a model (the others are documented in
#: docs/signaling.md only).
SERVER_EVENTS: dict[str, type[BaseModel]] = {
    "control:changed": ControlChanged,
    "viewer:state": SharedViewer,
    "viewer:pointer": PointerOut,
}

BANNER = f"""/**
 * The room protocol's payloads (docs/signaling.md), generated from the pydantic models of
 * signaling/schemas.py by signaling/wire_types.py: do not edit, run `{COMMAND}`.
 * tests/signaling/test_wire_types.py fails while this file differs from what it generates.
 */"""


def client_events() -> dict[str, type[BaseModel]]:
    from .events import EVENTS, JOIN
    from .schemas import Empty

    return {JOIN: Empty} | {name: spec.model for name, spec in EVENTS.items()}


def _untitled(schema: Any) -> Any:
    """pydantic titles every field ("Study Uid"); json-schema-to-typescript would make each
    titled one a type of its own. Only the models keep their titles (the interfaces' names)."""
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


def _events(title: str, description: str, events: dict[str, str]) -> dict[str, Any]:
    return {
        "title": title, "description": description, "type": "object",
        "additionalProperties": False,
        "properties": {name: {"$ref": ref} for name, ref in events.items()},
        "required": list(events),
    }


def json_schema() -> dict[str, Any]:
    """One schema: the models as ``$defs``, the two event tables at the root."""
    client, server = client_events(), SERVER_EVENTS
    models = sorted({*client.values(), *server.values()}, key=lambda m: m.__name__)
    refs, schema = models_json_schema([(m, "validation") for m in models],
                                      ref_template="#/$defs/{model}")
    defs = {name: {**_untitled(d), "title": name}
            for name, d in sorted(schema.get("$defs", {}).items())}

    def ref(model: type[BaseModel]) -> str:
        return str(refs[(model, "validation")]["$ref"])

    defs["ClientEvents"] = _events(
        "ClientEvents", "Each client → server event and its payload.",
        {name: ref(m) for name, m in client.items()})
    defs["ServerEvents"] = _events(
        "ServerEvents", "The server → client events whose payload the browser reads.",
        {name: ref(m) for name, m in server.items()})
    return {
        "title": "RoomProtocol",
        "description": "Both directions of the room channel (Socket.IO namespace /room).",
        "type": "object", "additionalProperties": False,
        "properties": {"client": {"$ref": "#/$defs/ClientEvents"},
                       "server": {"$ref": "#/$defs/ServerEvents"}},
        "required": ["client", "server"],
        "$defs": defs,
    }


def typescript() -> str:
    """The file as generated now (needs Node.js and frontend/node_modules)."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("generating frontend/src/wire/protocol.ts needs Node.js on PATH")
    done = subprocess.run(
        [node, str(SCRIPT), BANNER], input=json.dumps(json_schema()), capture_output=True,
        text=True, cwd=FRONTEND, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{SCRIPT.relative_to(ROOT)} failed:\n{done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signaling.wire_types", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only say whether the checked-in file is up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    text = typescript()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
    if args.check:
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
