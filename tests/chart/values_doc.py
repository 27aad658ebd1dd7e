"""The chart's values documentation, read from the `# --` comments of values.yaml.

Every leaf value carries a `# --` comment (continued by further `#` lines) right above it. This
module reads them into rows and writes the values table of charts/modelport/README.md:

    python -m tests.chart.values_doc --write     # regenerate the table
    python -m tests.chart.values_doc             # print it
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "modelport"
VALUES = CHART_DIR / "values.yaml"
README = CHART_DIR / "README.md"
BEGIN = "<!-- values-table:begin -->"
END = "<!-- values-table:end -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-]+):(?P<rest>.*)$")


@dataclass(frozen=True)
class Row:
    key: str
    """Dotted path, as `--set` takes it."""
    type: str
    default: str
    """The default as JSON."""
    description: str


def _lookup(values: Any, path: list[str]) -> Any:
    for part in path:
        values = values[part]
    return values


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def parse(text: str) -> tuple[list[Row], list[str]]:
    """Rows of every leaf value, and the dotted keys of leaves that have no `# --` comment.

    A key with a `# --` comment is a leaf even when its default is a non-empty map (resources,
    node selectors); a key without one that opens a block is a group of further values.
    """
    values = yaml.safe_load(text)
    lines = text.splitlines()
    rows: list[Row] = []
    undocumented: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing objects
    comment: list[str] = []
    skip_deeper_than: int | None = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if skip_deeper_than is not None:
            if stripped and (indent > skip_deeper_than or stripped.startswith("- ")):
                continue
            skip_deeper_than = None
        if stripped.startswith("#"):
            comment = _extend_comment(comment, stripped)
            continue
        match = _KEY.match(line)
        if not match:
            comment = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [match["key"]]
        rest = match["rest"].strip()
        if rest == "" and _opens_object(lines, index, indent) and not comment:
            stack.append((indent, match["key"]))  # a group of values
            continue
        if rest == "":  # a documented map or a block list: its content belongs to this leaf
            skip_deeper_than = indent
        dotted = ".".join(path)
        value = _lookup(values, path)
        if comment:
            rows.append(Row(dotted, _type_name(value), json.dumps(value), " ".join(comment)))
        else:
            undocumented.append(dotted)
        comment = []
    return rows, undocumented


def _extend_comment(comment: list[str], stripped: str) -> list[str]:
    body = stripped.lstrip("#").strip()
    if body.startswith("--"):
        return [body[2:].strip()]
    if comment:
        return [*comment, body]
    return []


def _opens_object(lines: list[str], index: int, indent: int) -> bool:
    for following in lines[index + 1 :]:
        stripped = following.strip()
        if not stripped or stripped.startswith("#"):
            continue
        deeper = len(following) - len(following.lstrip(" ")) > indent
        return deeper and not stripped.startswith("- ")
    return False


def table(rows: list[Row]) -> str:
    """The Markdown values table."""
    out = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for row in rows:
        default = row.default.replace("|", "\\|")
        description = row.description.replace("|", "\\|")
        out.append(f"| `{row.key}` | {row.type} | `{default}` | {description} |")
    return "\n".join(out)


def readme_with_table(readme: str, rows: list[Row]) -> str:
    """The README text with the table between its markers replaced."""
    head, _, tail = readme.partition(BEGIN)
    _, _, tail = tail.partition(END)
    return f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    rows, undocumented = parse(VALUES.read_text())
    if undocumented:
        print("undocumented values: " + ", ".join(undocumented), file=sys.stderr)
        return 1
    if "--write" in argv:
        README.write_text(readme_with_table(README.read_text(), rows))
        print(f"wrote {len(rows)} rows into {README}")
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
