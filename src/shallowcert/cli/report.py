"""``shallowcert report RUN_DIR``: regenerate the report from a run's artifacts."""

from __future__ import annotations

import argparse

from shallowcert.report import write_report
from shallowcert.study.targets import load_targets


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="(re)write report.html / report.md of a study run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--targets", metavar="FILE", help="YAML of targets to check (Table T.1) instead of those of the "
                   "run's config: the keys of a study config's 'targets' section")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    paths = write_report(args.run_dir, targets=None if args.targets is None else load_targets(args.targets))
    print(f"report: {paths['html']}")
    return 0
