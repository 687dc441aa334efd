"""The ``floatkey`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from floatkey import __version__
from floatkey.app import config, logs
from floatkey.app.options import run_command
from floatkey.audit.origin import acting_as, cli_origin
from floatkey.errors import FloatkeyError

logger = logging.getLogger("floatkey")

#: Subcommands that live in their own modules, each with ``main(argv) -> int``.
DELEGATED = {
    "doctor": "floatkey.hardware.doctor",
    "ca": "floatkey.hardware.ca",
    "virtual-key": "floatkey.hardware.virtual_key",
    "users": "floatkey.app.users_command",
    "audit": "floatkey.app.audit_command",
    "vendor": "floatkey.licensing.vendor",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]])
        return int(module.main(argv[1:]) or 0)
    args = parser().parse_args(argv)
    if not hasattr(args, "run"):
        parser().print_help()
        return 2
    return run_command("floatkey", lambda: args.run(args))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="floatkey", description="Floating license server with hardware keys.")
    p.add_argument("--version", action="version", version=f"floatkey {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the license server")
    _settings_args(serve)
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    serve.add_argument(
        "--crash-if-no-hardware-key",
        action="store_true",
        default=None,
        help="exit with status 75 instead of refusing when a license's key is missing",
    )
    serve.add_argument(
        "--user-authentication",
        action="store_true",
        default=None,
        help="require a login token on every route but /, /auth and health",
    )
    serve.set_defaults(run=run_serve)

    lic = sub.add_parser("licenses", help="add, list, remove, import and report on licenses")
    lic_sub = lic.add_subparsers(metavar="ACTION")
    add = lic_sub.add_parser("add", help="add a license")
    _target_args(add)
    add.add_argument("--product", required=True, help="product short code")
    add.add_argument("--policy", type=Path, help="JSON file of further policy fields (docs/api.md)")
    for name, kind in _POLICY_FLAGS.items():
        add.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
    add.add_argument(
        "--hardware-key",
        dest="isHWKeyReq",
        action="store_true",
        default=None,
        help="bind the license to the hardware key plugged in now",
    )
    add.set_defaults(run=run_licenses_add)
    ls = lic_sub.add_parser("list", help="list licenses with live usage")
    _target_args(ls)
    ls.add_argument("--product")
    ls.set_defaults(run=run_licenses_list)
    rm = lic_sub.add_parser("remove", help="remove a license and its seats")
    _target_args(rm)
    rm.add_argument("license_id", type=int)
    rm.set_defaults(run=run_licenses_remove)

    imp = lic_sub.add_parser("import", help="install a vendor license file or refresh file")
    _target_args(imp)
    imp.add_argument("file", type=Path, help="the license file the vendor sent")
    imp.set_defaults(run=run_licenses_import)

    rep = lic_sub.add_parser("report", help="make the license's next signed usage report for the vendor")
    _target_args(rep)
    rep.add_argument("--license-id", type=int, required=True, help="the license to report on")
    rep.add_argument(
        "--from", dest="since", help="start (RFC 3339 or YYYY-MM-DD; default: where the last ended)"
    )
    rep.add_argument("--to", dest="until", help="end, excluded (default: now)")
    rep.add_argument("-o", "--out", type=Path, help="the report file to write (default: standard output)")
    rep.set_defaults(run=run_licenses_report)

    req = sub.add_parser("activation-request", help="make an activation request to send to the vendor")
    _target_args(req)
    req.add_argument("--product", required=True, help="product short code")
    req.add_argument("--out", type=Path, required=True, help="the request file to write")
    req.set_defaults(run=run_activation_request)

    backup = sub.add_parser("backup", help="copy the data directory while the server runs")
    _settings_args(backup)
    backup.add_argument("destination", type=Path, help="a new, empty folder")
    backup.set_defaults(run=run_backup)

    for name, module in DELEGATED.items():
        sub.add_parser(name, help=f"see `floatkey {name} --help`", add_help=False)
        del module
    return p


_POLICY_FLAGS: dict[str, Any] = {
    "product_name": str,
    "license_type": str,
    "license_key": str,
    "floating_users": int,
    "floating_timeout": int,
    "max_borrow_time": int,
    "validity_period": str,
    "start_date": str,
    "max_consumptions": int,
    "allow_overages": str,
    "max_overages": int,
    "allow_unlimited_consumptions": str,
    "allow_negative_consumptions": str,
    "reset_consumption": str,
    "consumption_period": str,
    "hardware_key_serial": str,
}


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML configuration file (default: none, embedded defaults)")
    p.add_argument("--data-dir", type=Path, help="data directory (overrides dataDir)")


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get("FLOATKEY_URL", "http://127.0.0.1:8080"),
        help="the running server (default $FLOATKEY_URL or http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="work on the data directory itself; refused while a server uses it",
    )
    _settings_args(p)


def load_settings(args: argparse.Namespace) -> config.Settings:
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "crash_if_no_hardware_key": getattr(args, "crash_if_no_hardware_key", None),
        "user_authentication": getattr(args, "user_authentication", None),
    }
    return config.load(args.config, overrides)


def setup_logging(settings: config.Settings) -> None:
    logs.setup(settings.log_level, settings.log_format)


def run_serve(args: argparse.Namespace) -> int:
    from floatkey.app.system import Floatkey
    from floatkey.web.serve import serve

    settings = load_settings(args)
    setup_logging(settings)
    serve(settings, Floatkey(settings))
    return 0


def run_licenses_add(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    if args.policy is not None:
        fields.update(json.loads(args.policy.read_text(encoding="utf-8")))
    fields["product"] = args.product
    for name in [*_POLICY_FLAGS, "isHWKeyReq"]:
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    answer = _ask(args, lambda fk: fk.add_license(fields), "POST", "/api/v4/licenses", fields)
    print(json.dumps(answer, indent=2))
    return 0


def run_licenses_list(args: argparse.Namespace) -> int:
    query = "?" + urllib.parse.urlencode({"product": args.product}) if args.product else ""
    answer = _ask(args, lambda fk: fk.licenses(args.product), "GET", "/api/v4/license" + query)
    for lic in answer:
        print(
            f"{lic['id']:>6}  {lic['product_details']['short_code']:<20} "
            f"{lic['floating_in_use_devices']}/{lic['floating_users']} seats  "
            f"{lic['license_type']}{'  hardware key' if lic['is_hardware_key_auth'] else ''}"
        )
    return 0


def run_licenses_remove(args: argparse.Namespace) -> int:
    path = f"/api/v4/licenses/{args.license_id}"
    _ask(args, lambda fk: fk.remove_license(license_id=args.license_id), "DELETE", path)
    print(f"license {args.license_id} removed")
    return 0


def run_licenses_import(args: argparse.Namespace) -> int:
    data = args.file.read_bytes()
    answer = _ask(args, lambda fk: fk.import_license(data), "POST", "/api/v4/license/upload", raw=data)
    print(
        f"license file {answer['license_uid']} (sequence {answer['sequence']}) installed as license "
        f"{answer['id']} of product {answer['product_details']['short_code']}"
    )
    return 0


def run_licenses_report(args: argparse.Namespace) -> int:
    query = {"license_id": args.license_id, "from": args.since, "to": args.until}
    path = "/api/v4/license/report?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
    answer = _ask(args, lambda fk: fk.usage_report(args.license_id, args.since, args.until), "GET", path)
    if args.out is None:
        sys.stdout.write(answer["report"])
        return 0
    args.out.write_text(answer["report"], encoding="ascii")
    print(
        f"usage report {answer['sequence']} of license {answer['license_id']} ({answer['from']} to "
        f"{answer['to']}) written to {args.out}; send it to the vendor"
    )
    return 0


def run_activation_request(args: argparse.Namespace) -> int:
    answer = _ask(
        args,
        lambda fk: fk.activation_request(args.product),
        "POST",
        "/api/v4/license/generate",
        {"product": args.product},
    )
    args.out.write_text(json.dumps(answer, indent=2, sort_keys=True) + "\n", encoding="ascii")
    keys = ", ".join(s["serial"] for s in answer["signatures"]) or "none (bound to the hardware ID)"
    print(f"activation request written to {args.out} (signed by keys: {keys}); send it to the vendor")
    return 0


def run_backup(args: argparse.Namespace) -> int:
    from floatkey.storage.backup import backup

    settings = load_settings(args)
    backup(settings.data_dir, args.destination)
    print(f"backup of {settings.data_dir} written to {args.destination}")
    return 0


def _ask(
    args: argparse.Namespace,
    direct: Callable[[Any], Any],
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    raw: bytes | None = None,
) -> Any:
    """One request of a ``floatkey licenses`` command: ``direct(fk)`` on the data directory's
    own Floatkey with ``--direct``, else ``method path`` to the server at ``--url``."""
    if args.direct:
        with _direct(args) as fk:
            return direct(fk)
    return _http(args.url, method, path, body, raw=raw)


@contextlib.contextmanager
def _direct(args: argparse.Namespace) -> Iterator[Any]:
    """The data directory's own Floatkey; its audit records name the operator and ``cli``."""
    from floatkey.app.system import Floatkey

    settings = load_settings(args)
    setup_logging(settings)
    with acting_as(cli_origin()), Floatkey(settings) as fk:
        yield fk


def _http(
    url: str, method: str, path: str, body: dict[str, Any] | None = None, *, raw: bytes | None = None
) -> Any:
    """Call the server; ``raw`` sends a file as the body instead of ``body`` as JSON."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    request.add_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
    token = os.environ.get("FLOATKEY_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}")
        raise FloatkeyError(error.get("code", "internal_error"), error.get("message", str(exc))) from None
    except urllib.error.URLError as exc:
        raise FloatkeyError(
            "service_unavailable",
            f"No floatkey server answers at {url} ({exc.reason}); "
            "start one, or pass --url, or --direct to work on the data directory.",
        ) from None
    if not raw:
        return None
    if raw[:1] in (b"{", b"["):
        return json.loads(raw)
    return raw.decode()


if __name__ == "__main__":
    sys.exit(main())
