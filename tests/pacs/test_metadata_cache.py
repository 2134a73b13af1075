"""Metadata kept as text: built once per stored file, never stale, within its budget, and
made absolute without touching a value."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.dicomweb.metadata_cache import MetadataCache, absolute


def test_built_once_and_rebuilt_when_the_file_is_written_again(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"one")
    builds: list[int] = []

    def build() -> dict[str, object]:
        builds.append(1)
        return {"n": len(builds)}

    cache = MetadataCache()
    assert cache.text(path, build) == cache.text(path, build) == '{"n": 1}'
    path.write_bytes(b"other")
    os.utime(path, ns=(1, 1))
    assert cache.text(path, build) == '{"n": 2}'


def test_the_least_recently_used_go_first_past_the_budget(tmp_path: Path) -> None:
    cache = MetadataCache(budget_bytes=30)
    paths = [tmp_path / f"{n}.dcm" for n in range(3)]
    for p in paths:
        p.write_bytes(b"x")
    builds: list[Path] = []

    def text(p: Path) -> str:
        return cache.text(p, lambda: builds.append(p) or {"v": "x" * 4})

    text(paths[0]), text(paths[1]), text(paths[0]), text(paths[2])  # 14 bytes each
    assert builds == paths[:2] + [paths[2]]
    text(paths[0])  # still held: used after paths[1]
    text(paths[1])  # dropped for paths[2]: built again
    assert builds == [*paths[:2], paths[2], paths[1]]


def test_only_bulk_data_uris_get_the_origin() -> None:
    trap = '"BulkDataURI": "/dicomweb/x'
    texts = [json.dumps({"00100010": {"vr": "PN", "Value": [{"Alphabetic": trap}]},
                         "7FE00010": {"vr": "OW", "BulkDataURI": "/dicomweb/studies/1/frames/1"}})]
    body = json.loads(absolute(texts, "https://pacs.bv.vn"))
    assert body[0]["00100010"]["Value"][0]["Alphabetic"] == trap
    assert body[0]["7FE00010"]["BulkDataURI"] == "https://pacs.bv.vn/dicomweb/studies/1/frames/1"
