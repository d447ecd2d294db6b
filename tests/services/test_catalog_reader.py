"""The catalog's file reader: the orjson fast path reports exactly what the full `json` path reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.services import catalog as catalog_module
from portal.services.catalog import MAX_FILE_BYTES, load_directory
from portal.services.catalog_entry import Issue

from .test_catalog_fast_path import mutated_entries


def full_path_only(models: Path, name: str) -> tuple[Any, list[Issue]]:
    """What the full (json + marshmallow) path alone makes of one file."""
    raw = (models / name).read_bytes()

    def issue(message: str, line: int | None = None, fld: str | None = None) -> list[Issue]:
        return [Issue(name, line, fld, message, "error")]

    return catalog_module._full_read(name, raw, issue)


def load_one(models: Path, text: str | bytes) -> tuple[Any, list[Issue]]:
    path = models / "m.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    loaded = load_directory(models)
    return (next(iter(loaded.entries.values())) if loaded.entries else None), loaded.issues


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=mutated_entries(),
    indent=st.sampled_from([None, 2, 0]),
    bom=st.booleans(),
    dup=st.booleans(),
)
def test_loading_a_file_equals_the_full_path(tmp_path: Path, data: Any, indent: Any, bom: bool, dup: bool) -> None:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    text = json.dumps(data, indent=indent)
    if dup and text.startswith("{") and len(text) > 2:
        text = '{"displayName": "first",' + text[1:]  # a duplicate key when the entry has displayName
    raw = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    entry, issues = load_one(models, raw)
    expected_entry, expected_issues = full_path_only(models, "m.json")
    assert issues == expected_issues
    if any(i.severity == "error" for i in expected_issues):
        assert entry is None
    else:
        assert entry == expected_entry


@pytest.mark.parametrize(
    "text",
    [
        # Duplicates orjson would drop silently, at the top and nested, tight and spaced.
        '{"id": "a", "vllm": {"dtype": "half", "dtype": "bfloat16"}}',
        '{"id":"a","nodeSelector":{"k":"v","k":"w"}}',
        '{"id": "a", "env": [{"name": "A", "value": "1", "value": "2"}]}',
        '{"id": "a", "displayName": "x", "displayName"\n: "y"}',
        '{"id": "a", "resources": {"limits": {"cpu": "1"}, "limits": {"cpu": "2"}}}',
        # Integers beyond 64 bits: orjson reads them as floats, json as ints.
        '{"id": "a", "vllm": {"maxModelLen": 123456789012345678901234567890}}',
        '{"id": "a", "vllm": {"gpuMemoryUtilization": 123456789012345678901234567890}}',
        '{"id": "a", "vllm": {"gpuMemoryUtilization": 1e400}}',
        '{"id": "a", "vllm": {"gpuMemoryUtilization": 1.0e-400}}',
        # Escapes, BOMs, invalid JSON and constants.
        '\ufeff{"id": "a"}',
        '\ufeff\ufeff{"id": "a"}',
        '{"id": "a", "displayName": "caf\\u00e9"}',
        '{"id": "a", "displayName": "café ✓"}',
        '{"id": "a", "vllm": {"gpuMemoryUtilization": NaN}}',
        '{"id": "a", "vllm": {"gpuMemoryUtilization": Infinity}}',
        '{"id": "a",}',
        "",
        '{"id": "a"} trailing',
        '{"id": "a", "displayName": "tab\tinside"}',
    ],
)
def test_tricky_files_match_the_full_path(tmp_path: Path, text: str) -> None:
    models = tmp_path / "models"
    models.mkdir()
    entry, issues = load_one(models, text)
    expected_entry, expected_issues = full_path_only(models, "m.json")
    assert issues == expected_issues
    assert entry == (None if any(i.severity == "error" for i in expected_issues) else expected_entry)


def test_duplicate_keys_in_a_fast_path_shaped_file_are_warned(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    entry, issues = load_one(models, '{"id":"a","vllm":{"dtype":"half","dtype":"bfloat16"}}')
    assert entry == {"id": "a", "vllm": {"dtype": "bfloat16"}}
    assert [(i.field, i.severity) for i in issues] == [("dtype", "warning")]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    entry, issues = load_one(models, b'{"id": "a",\n"displayName": "\xff"}')
    assert entry is None
    assert [(i.line, i.message) for i in issues] == [(2, "file is not UTF-8 text")]


def test_read_file_copes_with_a_file_changed_since_the_scan(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    content = b'{"id": "a"}'
    path.write_bytes(content)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for scanned_size in (0, 1, len(content) - 1, len(content), len(content) + 1, 4096):
            assert catalog_module._read_file(dir_fd, "m.json", scanned_size) == content
        path.write_bytes(b"x" * (MAX_FILE_BYTES + 10))  # grew past the limit after a small scan
        assert len(catalog_module._read_file(dir_fd, "m.json", 5)) == MAX_FILE_BYTES + 1
    finally:
        os.close(dir_fd)


def test_file_grown_past_the_limit_after_the_scan_is_refused(tmp_path: Path) -> None:
    # A real directory whose file is larger than what the scan recorded (10 bytes): it grew in between.
    (tmp_path / "m.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        entry, issues = catalog_module._read_entry(dir_fd, "m.json", 10)
    finally:
        os.close(dir_fd)
    assert entry is None
    assert [i.message for i in issues] == [f"file is larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)"]
    # Scanned at its real size, the same file is refused before it is read.
    assert "the limit is" in load_directory(tmp_path).issues[0].message


def test_fingerprint_of_a_load_equals_the_directory_fingerprint(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for i in range(5):
        (models / f"m{i}.json").write_text(json.dumps({"id": f"m{i}"}))
    (models / ".hidden.json").write_text("{")
    (models / "sub.json").mkdir()
    loaded = load_directory(models)
    assert loaded.fingerprint == catalog_module.directory_fingerprint(models)
    assert loaded.files == 5 and list(loaded.entries) == [f"m{i}" for i in range(5)]
