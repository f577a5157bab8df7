"""``shallowcert datasets``: list datasets, where their files are looked for, and whether found."""

from __future__ import annotations

import argparse

from shallowcert.data import DATASETS, data_dir_for, files_found


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("datasets", help="list the datasets and whether their files are present")
    p.add_argument("--data-dir", default=None, help="look in this directory instead of the defaults")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = [(name, "found" if files_found(name, args.data_dir) else "missing",
             str(data_dir_for(name, args.data_dir)), info.description) for name, info in DATASETS.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return 0
