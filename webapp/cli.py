"""``face-studio`` command line: a thin dispatcher over the same functions the server calls.

Each sub-command lives in ``webapp/commands/<name>.py`` and exposes ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Command modules import heavy libraries (torch, diffusers) inside ``run``
so that ``face-studio --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from face_studio import __version__
from face_studio.errors import UserError
from webapp.commands import distil, edit, evaluate, export, parse, serve, synth, train, verify

# Each module: HELP, add_arguments(parser), run(args) -> int. In the order `--help` lists them.
COMMANDS = (export, verify, serve, parse, edit, synth, train, distil, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="face-studio",
        description="Face parsing in the browser, SD3.5 generation and face-aware editing on the server.",
    )
    parser.add_argument("--version", action="version", version=f"face-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        name = module.__name__.rsplit(".", 1)[-1]
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as err:  # a bad input or environment: one clear line, exit 2, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
