"""``shallowcert study``: the whole experiment chain, resumable, then the report."""

from __future__ import annotations

import argparse
import logging

from shallowcert.report import write_report
from shallowcert.study.config import load_config
from shallowcert.study.presets import PRESETS
from shallowcert.study.runner import run_study

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="run the whole study (resumable) and write the report")
    p.add_argument("config", nargs="?", default=None, help="YAML config file (or use --preset)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--data-dir", default=None, help="directory of the dataset's files (overrides data.data_dir)")
    p.add_argument("--resume", action="store_true", help="reuse the complete and valid stages of RUN_DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, preset=args.preset)
    if args.data_dir is not None:
        config["data"]["data_dir"] = args.data_dir
    facts = run_study(config, args.out, resume=args.resume)
    paths = write_report(args.out)
    for name, stage in facts["stages"].items():
        log.info("%-13s %8.1f s%s", name, stage["seconds"], " (reused)" if stage["reused"] else "")
    print(f"study finished in {facts['wall_seconds']:.0f} s; report: {paths['html']}")
    return 0
