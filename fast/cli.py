"""`fast <subcommand>`: the only entry point that workflow rules and users call.

Each area of the package registers its own subcommands (``add_parsers``) in its ``commands``
module; heavy imports happen inside the handlers so that ``fast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fast.errors import FastError

COMMAND_MODULES = [
    "fast.data.commands",          # fetch, prepare
    "fast.diffusion.commands",     # train, bench
    "fast.methods.commands",       # methods, synthesize, grid
    "fast.segmentation.commands",  # train-segmenter, evaluate
    "fast.report.commands",        # report, fidelity
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fast", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.func(args)
    except FastError as exc:
        print(f"fast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fast {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
