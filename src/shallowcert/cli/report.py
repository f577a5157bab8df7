"""``shallowcert report RUN_DIR``: regenerate the report from a run's artifacts."""

from __future__ import annotations

import argparse

from shallowcert.report import write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="(re)write report.html / report.md of a study run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    paths = write_report(args.run_dir)
    print(f"report: {paths['html']}")
    return 0
