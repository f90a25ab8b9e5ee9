"""The ``esm`` command: one sub-command per module in ``esm_cli.commands``.

Every failure a user can cause (bad files, bad parameters, sizes, a dead daemon) ends in one
line on stderr and exit status 2 (usage) or 1 (the job failed), never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from esm_cli.errors import UserError
from esm_core.memory import tune_allocator

# Sub-command modules; each has register(subparsers) which sets ``func`` on its parser.
COMMANDS = ("synth", "fill", "install_plugin", "daemon", "eval", "grid", "variants", "batch")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="esm", description="Extreme Style Machines: texture synthesis with random neural networks.")
    from esm_cli import __version__

    parser.add_argument("--version", action="version", version=f"esm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"esm_cli.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tune_allocator()  # before any thread allocates: in-process syntheses and the daemon run faster
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"esm {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"esm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
