"""``floatkey audit``: export and verify a data directory's audit trail.

Both read the data directory read-only (LMDB's readers work beside its one writer), so
they work on a stopped server's directory and on a running one's alike, and never change
anything. ``export`` writes JSON lines on standard output; ``verify`` walks the hash chain
and exits 0 when it is intact, 1 naming the first bad record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from floatkey.app import config
from floatkey.app.options import data_dir_options, run_command
from floatkey.audit import trail


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not hasattr(args, "action"):
        parser().print_help()
        return 2

    def work() -> int:
        settings = config.load(args.config, {"data_dir": args.data_dir})
        if args.action == "export":
            return export(settings.data_dir, getattr(args, "from"), args.to)
        return verify(settings.data_dir)

    # 1 means a broken chain, so a refused request (a bad --from, say) ends with 2.
    return run_command("floatkey audit", work, refused=2)


def parser() -> argparse.ArgumentParser:
    common = data_dir_options()
    p = argparse.ArgumentParser(
        prog="floatkey audit",
        description="Read the audit trail of a data directory (read-only; the server may run).",
    )
    sub = p.add_subparsers(metavar="ACTION")
    ex = sub.add_parser("export", parents=[common], help="the records as JSON lines on standard output")
    ex.add_argument("--from", help="first time (RFC 3339 or YYYY-MM-DD)")
    ex.add_argument("--to", help="last time (RFC 3339 or YYYY-MM-DD)")
    ex.set_defaults(action="export")
    sub.add_parser(
        "verify", parents=[common], help="walk the hash chain: exit 0 intact, 1 at the first bad record"
    ).set_defaults(action="verify")
    return p


def export(data_dir: Path, start_text: str | None, end_text: str | None) -> int:
    query = {k: v for k, v in (("from", start_text), ("to", end_text)) if v is not None}
    start, end = trail.window(query)
    with trail.read_only(data_dir) as (txn, dbs):
        records, _ = trail.select(txn, dbs, start, end)
        out = sys.stdout
        for record in records:
            out.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    return 0


def verify(data_dir: Path) -> int:
    with trail.read_only(data_dir) as (txn, dbs):
        verdict = trail.check(txn, dbs)
    if verdict.ok:
        print(verdict.describe())
        return 0
    print(f"floatkey audit: {verdict.describe()}", file=sys.stderr)
    return 1
