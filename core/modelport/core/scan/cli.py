"""``modelport scan PATH... [--json]``: exit 0 when all are safe, 1 when one is unsafe, 2 when one
could not be decided, read or scanned (and none is unsafe)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from modelport.core.formats import ModelFormat
from modelport.core.scan.scanner import scan
from modelport.core.scan.verdict import Outcome, Verdict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelport scan", description="Check model files for code that would run on load."
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="model files to scan")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--format",
        dest="expected_format",
        choices=[fmt.value for fmt in ModelFormat],
        help="scan as this format instead of the one each file name gives",
    )
    return parser


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """1 when a scanned file is unsafe; 2 when one could not be decided or was not scanned (a
    file the scanner does not take is refused, but it says nothing about any content)."""
    outcomes = {v.outcome for v in verdicts if v.sha256 is not None}
    if Outcome.UNSAFE in outcomes:
        return 1
    if Outcome.UNDECIDABLE in outcomes or any(v.sha256 is None for v in verdicts):
        return 2
    return 0


def _human(path: str, verdict: Verdict, out: TextIO) -> None:
    label = {Outcome.SAFE: "SAFE", Outcome.UNSAFE: "UNSAFE", Outcome.UNDECIDABLE: "UNDECIDABLE"}
    if verdict.sha256 is None:  # nothing was read: say why, not the digest of no bytes
        print(f"{'NOT SCANNED':<12} {path}", file=out)
    else:
        fmt = verdict.format or "unknown format"
        digest = verdict.sha256[:16]
        print(f"{label[verdict.outcome]:<12} {path}  ({fmt}, sha256 {digest}…)", file=out)
    for f in verdict.findings:
        print(f"    {f.code.value}: {f.message}  [{f.location}]", file=out)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    results: list[tuple[str, Verdict]] = []
    for path in args.paths:
        verdict = scan(path, expected_format=args.expected_format)
        results.append((path, verdict))
        if not args.json:
            _human(path, verdict, out)
    if args.json:
        doc = {"results": [{"path": p, **v.to_dict()} for p, v in results]}
        json.dump(doc, out, indent=2)
        out.write("\n")
    return exit_code([v for _, v in results])


if __name__ == "__main__":
    sys.exit(main())
