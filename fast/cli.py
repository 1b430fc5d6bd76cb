"""`fast <subcommand>`: the only entry point that workflow rules and users call.

Each area of the package registers its own subcommands (``add_parsers``) in its ``commands``
module; heavy imports happen inside the handlers so that ``fast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

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


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` (the temporaries of
    fast.io.atomic_dir/atomic_path) runs, as it does for SIGINT."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = args.func(args)
    except FastError as exc:
        print(f"fast {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a fault of the machine (disk full, read-only, ...), not a bug: one line
        from fast.io import os_error_message

        print(f"fast {args.command}: error: {_one_line(os_error_message(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fast {args.command}: interrupted; partial outputs removed", file=sys.stderr)
        return 130
    except Terminated:
        print(f"fast {args.command}: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(result or 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
