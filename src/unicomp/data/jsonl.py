"""Strict JSON Lines parsing that points at the exact bad line.

A mirror file is copied around by hand, so truncation or a stray edit happens; the user needs
the file and line to fix, not a bare JSONDecodeError from deep inside a loader.
"""

from __future__ import annotations

import json
from pathlib import Path

from unicomp.errors import UnicompError

_FIX = "repair or re-copy that file, or point UNICOMP_DATA_DIR / data_dir at a good mirror"


def parse_jsonl(data: bytes, path: Path) -> list[dict]:
    """Rows of a JSON Lines file (one object per line; blank lines ignored)."""
    return parse_jsonl_lines(data, path)[0]


def parse_jsonl_lines(data: bytes, path: Path, fix: str = _FIX) -> tuple[list[dict], list[int]]:
    """Rows of a JSON Lines file and the line number of each, so later checks can point at a line.

    Splits on "\\n" only: str.splitlines would also split on U+2028 and friends, which are
    legal unescaped inside JSON strings.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnicompError(f"{path} line {line}: not valid UTF-8 ({exc.reason})", fix) from None
    rows: list[dict] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnicompError(
                f"{path} line {number}: invalid JSON: {exc.msg} at column {exc.colno}", fix
            ) from None
        if not isinstance(row, dict):
            raise UnicompError(
                f"{path} line {number}: expected a JSON object, got {type(row).__name__}", fix
            )
        rows.append(row)
        lines.append(number)
    return rows, lines


def parse_json_array_lines(data: bytes, path: Path) -> tuple[list[dict], list[int]]:
    """Records of a JSON file holding one array of objects (TrustLLM's format), and the line on
    which each record starts, so a bad record is named by file and line like a JSON Lines row."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnicompError(f"{path} line {line}: not valid UTF-8 ({exc.reason})", _FIX) from None
    decoder = json.JSONDecoder()
    ws = " \t\r\n"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def fail(i: int, what: str) -> UnicompError:
        return UnicompError(f"{path} line {text.count(chr(10), 0, i) + 1}: {what}", _FIX)

    i = skip(0)
    if i >= len(text) or text[i] != "[":
        raise fail(i, "expected a JSON array of records")
    rows: list[dict] = []
    lines: list[int] = []
    i = skip(i + 1)
    if i < len(text) and text[i] == "]":
        return rows, lines
    while True:
        try:
            row, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise fail(exc.pos, f"invalid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise fail(i, f"record {len(rows)}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
        lines.append(text.count("\n", 0, i) + 1)
        i = skip(end)
        if i < len(text) and text[i] == ",":
            i = skip(i + 1)
            continue
        if i < len(text) and text[i] == "]":
            rest = skip(i + 1)
            if rest != len(text):
                raise fail(rest, "unexpected content after the array")
            return rows, lines
        raise fail(i, "expected ',' or ']' after a record (the file may be truncated)")
