"""The browser's room protocol types (frontend/src/wire/protocol.ts) are what
signaling/wire_types.py generates from the pydantic models now: a model changed without
regenerating them fails here."""

from __future__ import annotations

import difflib

from signaling import wire_types


def test_the_checked_in_typescript_is_generated_from_the_models() -> None:
    generated = wire_types.typescript()
    checked_in = wire_types.OUTPUT.read_text(encoding="utf-8")
    if checked_in != generated:
        diff = "".join(difflib.unified_diff(
            checked_in.splitlines(keepends=True), generated.splitlines(keepends=True),
            "frontend/src/wire/protocol.ts (checked in)", "generated from signaling/schemas.py",
            n=2))
        raise AssertionError(
            "frontend/src/wire/protocol.ts differs from the pydantic models of "
            f"signaling/schemas.py: run `{wire_types.COMMAND}` "
            f"(python -m signaling.wire_types) and commit the result.\n{diff}")


def test_every_event_with_a_model_is_in_the_tables() -> None:
    from signaling.events import EVENTS, JOIN

    schema = wire_types.json_schema()["$defs"]
    assert set(schema["ClientEvents"]["properties"]) == {JOIN, *EVENTS}
    assert set(schema["ServerEvents"]["properties"]) == set(wire_types.SERVER_EVENTS)
    # Each payload model is there under its own name, the interface's.
    for name in ("ViewerStateIn", "Viewport", "ControlChanged", "SharedViewer", "PointerOut"):
        assert schema[name]["title"] == name
