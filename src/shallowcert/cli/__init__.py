"""The ``shallowcert`` command line: a thin layer over the library.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function
``(args) -> int``. User mistakes (:class:`shallowcert.errors.UserError`) become one
line on stderr and exit status 2.

Only the module of the command being run is imported (all of them for ``--help`` or a
mistyped command): each pulls in its own stage, and start-up time matters to
``shallowcert verify``, which VNN-COMP-style runs start once per property.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from shallowcert import __version__
from shallowcert.errors import UserError

# One module per sub-command, in the order of the pipeline.
COMMAND_MODULES = (
    "datasets",
    "train",
    "evaluate",
    "distill",
    "prune",
    "import_state_dict",
    "export_onnx",
    "attack",
    "certify",
    "verify",
    "robust_train",
    "study",
    "report",
)

_ALIASES = {"import": "import_state_dict"}  # command names that are not their module's name

log = logging.getLogger("shallowcert")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command, or only the one ``argv`` names (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="shallowcert", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"shallowcert {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _modules_for(argv):
        importlib.import_module(f"shallowcert.cli.{name}").register(subparsers)
    return parser


def _modules_for(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The command modules to import for ``argv``: the named command's alone when the first
    word that is not an option names one, every module otherwise."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    module = _ALIASES.get(words[0], words[0].replace("-", "_")) if words else None
    return (module,) if module in COMMAND_MODULES else COMMAND_MODULES


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"shallowcert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shallowcert: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
