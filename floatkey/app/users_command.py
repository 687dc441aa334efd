"""``floatkey users``: manage the users of authentication mode on the data directory.

Works on the data directory itself, so the server must be stopped; while one runs, the
same is done over HTTP (``/api/v4/users``, ``/api/v4/secret/rotate``). Passwords come
from a prompt, or from standard input with ``--password-stdin``; ``--password`` exists
for scripts that insist, with a warning, as ``ps`` shows it to everyone.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from floatkey.app import config
from floatkey.app.options import data_dir_options, run_command
from floatkey.audit import events
from floatkey.audit.origin import acting_as, cli_origin
from floatkey.auth import tokens
from floatkey.auth.accounts import Accounts
from floatkey.auth.passwords import ROLES
from floatkey.errors import FloatkeyError, StorageError

_WHILE_RUNNING = {
    "add": "POST /api/v4/users",
    "list": "GET /api/v4/users",
    "remove": "DELETE /api/v4/users/NAME",
    "passwd": "POST /api/v4/users/NAME/password",
    "role": "POST /api/v4/users/NAME/role",
    "rotate-secret": "POST /api/v4/secret/rotate",
}


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not hasattr(args, "action"):
        parser().print_help()
        return 2

    def while_running(exc: StorageError) -> str | None:
        if "in use" not in str(exc):
            return None
        return (
            f"stop the server first, or, if it runs in authentication mode, use its HTTP API "
            f"instead: {_WHILE_RUNNING[args.action]} with an admin's token "
            f"(docs/authentication.md; open mode has no user management over HTTP)."
        )

    return run_command(
        "floatkey users",
        lambda: _run(args, config.load(args.config, {"data_dir": args.data_dir})),
        storage_hint=while_running,
    )


def parser() -> argparse.ArgumentParser:
    common = data_dir_options()
    secret = argparse.ArgumentParser(add_help=False)
    source = secret.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    source.add_argument("--password", help="the password itself (visible to `ps`: avoid)")

    p = argparse.ArgumentParser(
        prog="floatkey users", description="Manage the users of authentication mode (server stopped)."
    )
    sub = p.add_subparsers(metavar="ACTION")
    add = sub.add_parser("add", parents=[common, secret], help="add a user")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="user")
    add.set_defaults(action="add")
    sub.add_parser("list", parents=[common], help="list users").set_defaults(action="list")
    rm = sub.add_parser("remove", parents=[common], help="remove a user")
    rm.add_argument("username")
    rm.set_defaults(action="remove")
    pw = sub.add_parser("passwd", parents=[common, secret], help="set a user's password")
    pw.add_argument("username")
    pw.set_defaults(action="passwd")
    role = sub.add_parser("role", parents=[common], help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(action="role")
    rotate = sub.add_parser(
        "rotate-secret", parents=[common], help="replace the token secret: every token stops working"
    )
    rotate.set_defaults(action="rotate-secret")
    return p


def _run(args: argparse.Namespace, settings: config.Settings) -> int:
    password = read_password(args) if args.action in ("add", "passwd") else ""
    with accounts(settings) as acc:
        if args.action == "add":
            acc.add_user(args.username, password, args.role)
            print(f"user {args.username} added with role {args.role}")
        elif args.action == "passwd":
            acc.set_password(args.username, password)
            print(f"password of {args.username} changed; their earlier tokens no longer work")
        elif args.action == "list":
            for user in acc.users():
                note = "  (must change password)" if user["must_change_password"] else ""
                print(f"{user['username']:<32} {user['role']:<6} {user['created_at']}{note}")
        elif args.action == "remove":
            acc.remove_user(args.username)
            print(f"user {args.username} removed")
        elif args.action == "role":
            acc.set_role(args.username, args.role)
            print(f"{args.username} now has role {args.role}; their earlier tokens no longer work")
        elif args.action == "rotate-secret":
            acc.audit.audited(events.SECRET_ROTATED, lambda: tokens.rotate_secret(settings.data_dir))
            print("token secret rotated: every token issued before no longer works")
    return 0


def read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        print(
            "floatkey users: warning: a password on the command line is visible to every user of "
            "this machine (ps, shell history); prefer the prompt or --password-stdin",
            file=sys.stderr,
        )
        return str(args.password)
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise FloatkeyError(
            "missing_parameters", "No terminal to ask for the password: pipe it with --password-stdin."
        )
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise FloatkeyError("validation_error", "The two passwords differ.")
    return first


@contextmanager
def accounts(settings: config.Settings) -> Iterator[Accounts]:
    """The users of ``settings.data_dir``, through the same Floatkey the server builds
    (without the hardware keys: the command leaves the readers alone)."""
    from floatkey.app.system import Floatkey

    with acting_as(cli_origin()), Floatkey(settings, hardware_keys=False) as fk:
        yield fk.accounts
