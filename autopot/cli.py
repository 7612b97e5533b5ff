"""The ``autopot`` command line: a thin click root; each command group lives in
:mod:`autopot.commands` and is imported only when used, so ``autopot --help`` and task
start-up stay fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

from autopot import __version__
from autopot.errors import EXIT_CODES_HELP, AutopotError, ExitCode, database_error, os_error

#: command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "runs": "autopot.commands.store_cmds:runs",
    "show": "autopot.commands.store_cmds:show",
    "db": "autopot.commands.store_cmds:db",
    "orchestrator": "autopot.commands.orchestrator_cmds:orchestrator",
    "archive": "autopot.commands.results_cmds:archive",
    "export": "autopot.commands.bundle_cmds:export",
    "report": "autopot.commands.results_cmds:report",
    "simulate": "autopot.commands.simulate_cmds:simulate",
    "validate": "autopot.commands.validation_cmds:validate",
    "benchmark": "autopot.commands.validation_cmds:benchmark",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name, quiet=True) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str, quiet: bool = False) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            if quiet:
                return None
            raise


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP
)
@click.version_option(__version__, prog_name="autopot")
@click.option("-v", "--verbose", count=True, help="more progress output (-v: debug)")
@click.option("-q", "--quiet", is_flag=True, help="only warnings and errors")
def cli(verbose: int, quiet: bool) -> None:
    """Automatic active learning of Moment Tensor Potentials, every step recorded."""
    from autopot.logsetup import configure

    configure(-1 if quiet else verbose)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"autopot: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """Entry point: errors print as one line on stderr, with the exit code of their kind
    (:class:`autopot.errors.ExitCode`)."""
    try:
        code = cli.main(standalone_mode=False)  # returns a click Exit's code in this mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except AutopotError as exc:
        _fail(str(exc), int(exc.exit_code))
    except OSError as exc:  # permission denied, disk full, ... outside any check: still one line
        err = os_error(exc)
        _fail(str(err), int(err.exit_code))
    except click.exceptions.Abort:
        click.echo("autopot: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line naming the option, not click's usage block
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        _fail(f"{where}{exc.format_message()}", int(ExitCode.BAD_INPUT))
    except click.ClickException as exc:
        _fail(exc.format_message(), int(ExitCode.BAD_INPUT))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", int(ExitCode.STOPPED))
    except Exception as exc:
        if type(exc).__module__.startswith(
            ("ZEO", "ZODB", "BTrees", "transaction")
        ):  # the database failed
            err = database_error(exc)
            _fail(str(err), int(err.exit_code))
        raise


if __name__ == "__main__":
    main()
