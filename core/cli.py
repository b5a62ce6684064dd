"""The ``cortico`` command line: one entry point, one sub-command module per folder.

Each folder that offers commands has a ``cli.py`` with ``add_commands(subparsers)``; the handlers import
their heavy dependencies lazily, so ``cortico --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cortico import __version__

# folders whose cli.add_commands(subparsers) contribute commands, in --help order
COMMAND_MODULES = (
    "cortico.envs.cli",
    "cortico.perception.cli",
    "cortico.policies.cli",
    "cortico.memory.cli",
    "cortico.language.cli",
    "cortico.deploy.cli",
    "cortico.agents.cli",
)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="cortico",
        description="Perceive-remember-act robot learning: simulation, demonstrations, policies, memory, deployment.",
    )
    parser.add_argument("--version", action="version", version=f"cortico {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input or environment that get one clear line instead of a traceback.

    Data, checkpoint, profile and calibration errors are ``ValueError`` subclasses; unknown names are
    ``UnknownNameError``; missing optional systems (ROS, CoppeliaSim) raise their own import errors.
    """
    from cortico.deploy.ros_arm import StaleObservationError
    from cortico.deploy.transport import RosUnavailableError
    from cortico.envs.rlbench_backend import BackendUnavailableError
    from cortico.registry import UnknownNameError

    return (ValueError, UnknownNameError, FileNotFoundError, ConnectionError, StaleObservationError,
            RosUnavailableError, BackendUnavailableError)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"cortico {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except _user_errors() as error:
        print(f"cortico {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"cortico {args.command}: interrupted; finished work is saved (use --resume to continue)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
