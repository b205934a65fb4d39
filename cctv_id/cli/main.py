"""The ``cctv-id`` command group, global options and error handling.

Expected failures (``CctvIdError``) become one line on stderr and the error's exit code;
anything else is reported in one line too, with the traceback only under ``--debug``.
Command modules are imported here but import their heavy dependencies lazily.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from .. import __version__
from ..errors import CctvIdError, StoppedOnSignal
from .context import AppContext


class _CliLogFormatter(logging.Formatter):
    """``warning: message`` like the CLI's own lines; logger names only with --debug."""

    def __init__(self, debug: bool):
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        where = f" [{record.name}]" if self.debug else ""
        text = f"{record.levelname.lower()}{where}: {record.getMessage()}"
        if record.exc_info and self.debug:
            text += "\n" + self.formatException(record.exc_info)
        return text


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db", metavar="URL", envvar="CCTV_ID_DB",
              help="Database URL (SQLAlchemy), e.g. sqlite:///hits.db or "
                   "postgresql+psycopg://user@host/db. Env: CCTV_ID_DB.")
@click.option("--config", "config_file", metavar="FILE", envvar="CCTV_ID_CONFIG",
              type=click.Path(dir_okay=False),
              help="Deployment config (YAML). Env: CCTV_ID_CONFIG.")
@click.option("--operator", metavar="NAME", envvar="CCTV_ID_OPERATOR",
              help="Who is acting, for the audit log (default: the OS user). Env: CCTV_ID_OPERATOR.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, prog_name="cctv-id")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_file: str | None, operator: str | None,
        debug: bool) -> None:
    """Find watchlist people in CCTV footage with tiny, blurred faces.

    \b
    Typical use:
      cctv-id enroll --name alice alice1.jpg alice2.jpg
      cctv-id process footage.mp4 --camera lobby --start-time 2026-05-01T08:00:00Z
      cctv-id hits --person alice --format json
    """
    handler = logging.StreamHandler()
    handler.setFormatter(_CliLogFormatter(debug))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler],
                        force=True)
    ctx.obj = AppContext(db_option=db, config_file=config_file, debug=debug,
                         operator_option=operator)
    ctx.call_on_close(ctx.obj.close)
    if config_file and not ctx.resilient_parsing:
        ctx.obj.config()  # a bad config file fails every command, before any work


def _register_commands() -> None:
    from . import (case, demo, doctor, enroll, evaluate, export, governance, maintenance, monitor,
                   process, query, review, search, train, web)

    for module in (enroll, process, monitor, query, search, review, case, governance, doctor,
                   maintenance, demo, train, export, evaluate, web):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rv = cli.main(args=argv, prog_name="cctv-id", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except StoppedOnSignal as exc:
        if str(exc):
            click.echo(f"error: {exc}", err=True)
        _exit_now(exc.exit_code)
    except CctvIdError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last line of defence for the user
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                   err=True)
        sys.exit(1)


def _exit_now(code: int) -> None:
    """Leave without the interpreter's shutdown, after a command stopped on a signal.

    The command's work is saved (a run's checkpoint committed, the monitor's open tracks
    stored) and its context (database engine) closed by then. Python's shutdown puts the default signal handlers back and can take a while with
    torch loaded, so a second Ctrl-C landing in it would kill the process by the signal
    instead of the documented 128 + signal exit; skipping it keeps that promise.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
