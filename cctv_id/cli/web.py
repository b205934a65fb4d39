"""``cctv-id serve`` (the web application) and ``cctv-id user`` (its accounts).

Thin wrappers: accounts, password hashes and tokens live in :mod:`cctv_id.store.users`,
the application in :mod:`cctv_id.web.app`, imported only when ``serve`` runs so that
``cctv-id --help`` stays fast.
"""

from __future__ import annotations

import json
import signal
import socket
import sys

import click

from ..errors import InputError
from ..serialize import iso
from .query import render_table

ROLE_CHOICE = click.Choice(["viewer", "reviewer", "admin"])


@click.group()
def user():
    """Accounts of the web application (cctv-id serve): add, list, remove, API tokens."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, required=True,
              help="viewer: read only; reviewer: also confirm/reject hits and name tracks; "
                   "admin: also enrol, remove, purge and read the audit log.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of stdin (else asked on a terminal; "
                   "without either the user has no password and logs in with API tokens).")
@click.pass_obj
def user_add(app, name, role, password_stdin):
    """Add a web user NAME with a role and (optionally) a password."""
    repo = app.repo()
    if any(u["username"] == name.strip() for u in repo.list_users()):
        raise InputError(f"user {name.strip()!r} exists already")  # before asking a password
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: no password on stdin")
    elif sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    repo.add_user(name, role, password)
    how = "with a password" if password else "without a password (use `cctv-id user token`)"
    click.echo(f"added {role} {name.strip()} {how}")


@user.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_obj
def user_list(app, fmt):
    """List web users, their roles and how many API tokens they hold."""
    rows = [{k: iso(v) for k, v in r.items() if k != "id"} for r in app.repo().list_users()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no users: add one with `cctv-id user add NAME --role admin`")
    else:
        click.echo(render_table(rows, ["username", "role", "has_password", "tokens",
                                       "created_at"]))


@user.command("remove")
@click.argument("name")
@click.pass_obj
def user_remove(app, name):
    """Remove web user NAME; their sessions and API tokens stop working at once."""
    app.repo().remove_user(name)
    click.echo(f"removed {name}")


@user.command("token")
@click.argument("name")
@click.option("--revoke-all", is_flag=True, help="Revoke NAME's API tokens instead.")
@click.pass_obj
def user_token(app, name, revoke_all):
    """Print a new API token for NAME (shown once; send it as `Authorization: Bearer ...`)."""
    if revoke_all:
        n = app.repo().revoke_tokens(name, kind="api")
        click.echo(f"revoked {n} API token(s) of {name}")
        return
    click.echo(app.repo().create_token(name, kind="api"))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.pass_obj
def serve(app, host, port):
    """Run the web application (hits, persons, search, runs, reviews) until Ctrl-C/SIGTERM."""
    repo = app.repo()
    if repo.count_users() == 0:
        raise InputError("no web users yet: `cctv-id user add NAME --role admin` first")
    import uvicorn

    from ..web.app import create_app

    config = uvicorn.Config(create_app(app), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")
    shown = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        """Says where it listens once bound (the real port for --port 0); SIGTERM or Ctrl-C
        stop it gracefully and the command exits 0 (not re-raising the signal)."""

        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started:
                ports = [s.getsockname()[1] for srv in self.servers for s in srv.sockets]
                click.echo(f"serving on http://{shown}:{ports[0] if ports else port}/ "
                           "(Ctrl-C to stop)")
                sys.stdout.flush()

        def handle_exit(self, sig, frame):
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

    try:  # bound here, so a taken port or a bad address is one clean line
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                                    else socket.AF_INET)
    except (OSError, OverflowError) as exc:
        why = str(getattr(exc, "strerror", None) or exc).split(" (while attempting")[0]
        raise InputError(f"cannot listen on {shown}:{port}: {why}") from None
    server = Server(config)
    with sock:
        server.run(sockets=[sock])
    if not server.started:
        raise InputError(f"could not start serving on {shown}:{port}")
    click.echo("stopped")


COMMANDS = [serve, user]
