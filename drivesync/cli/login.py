"""``drivesync login``, ``drivesync authorize`` and ``drivesync whoami``: parsing and printing only.

The flows live in drivesync.login; credentials choice in drivesync.auth. Nothing here prints a
token, except ``authorize``, whose whole job is to print the blob the user pastes into ``login``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .. import auth
from ..errors import DrivesyncError
from .common import add_connection_flags

SCOPE_CHOICES = tuple(auth.SCOPES)


def register(subparsers, name: str) -> None:
    {"login": _register_login, "authorize": _register_authorize, "whoami": _register_whoami}[name](subparsers, name)


def _client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client-secrets", metavar="FILE",
                   help="your OAuth client (Desktop app) JSON from the Cloud console (default "
                        "$DRIVESYNC_CLIENT_SECRETS)")
    p.add_argument("--scope", choices=SCOPE_CHOICES, default="drive",
                   help="Drive access to ask for (default: drive, full access)")
    p.add_argument("--auth-uri", metavar="URL", help="authorization endpoint (default Google's, or $DRIVESYNC_AUTH_URI)")
    p.add_argument("--token-uri", metavar="URL", help="token endpoint (default Google's, or $DRIVESYNC_TOKEN_URI)")


def _register_login(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="sign in to Google Drive and save the token (0600) for later commands",
                              description="Sign in with your browser (loopback redirect); where no browser can reach "
                                          "this machine, --no-browser prints a command to run elsewhere "
                                          "('drivesync authorize') and reads the token it prints.")
    _client_flags(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-browser", dest="no_browser", action="store_const", const=True, default=None,
                      help="two-step sign-in: run 'drivesync authorize' on a machine with a browser, paste its token")
    mode.add_argument("--browser", dest="no_browser", action="store_const", const=False,
                      help="sign in with a browser on this machine even if none seems available (prints the URL)")
    p.add_argument("--token-file", metavar="FILE", help="where to save the token (default: token.json in the config folder: $DRIVESYNC_CONFIG_DIR, "
                        "$XDG_CONFIG_HOME/drivesync, else the platform's, ~/.config/drivesync on Linux)")
    p.add_argument("--api-url", metavar="URL", help="Drive API root used to show the account (default Google's)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv for debug)")
    p.set_defaults(func=_login)


def _register_authorize(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="sign in here with a browser and print a token for 'login --no-browser'",
                              description="For 'drivesync login --no-browser' on a machine without a browser: run "
                                          "this where a browser is, then paste the line it prints over there. The "
                                          "line is a secret (it grants access to your Drive): paste it nowhere else.")
    _client_flags(p)
    p.add_argument("--no-open", action="store_true", help="do not start a browser; just print the URL to visit")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv for debug)")
    p.set_defaults(func=_authorize)


def _register_whoami(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="show which credentials are used, the account and its storage quota")
    add_connection_flags(p)
    p.set_defaults(func=_whoami)


def _settings(args):
    from ..config import from_environment

    return from_environment(api_url=getattr(args, "api_url", None), give_up_after=getattr(args, "give_up_after", None))


def _login(args) -> int:
    from .. import login as flows

    result = flows.login(client_secrets=args.client_secrets, scopes=[args.scope], no_browser=args.no_browser,
                         auth_uri=args.auth_uri, token_uri=args.token_uri, token_file=args.token_file)
    print(f"Signed in; token saved to {result.token_file} (readable by you only).")
    try:
        who = asyncio.run(flows.whoami_async(_settings(args), credentials=str(result.token_file)))
        print(f"Account: {_account(who)}")
    except DrivesyncError as exc:  # the sign-in itself succeeded; showing the account is a courtesy
        print(f"drivesync: could not show the account yet ({exc})", file=sys.stderr)
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        print("Note: GOOGLE_APPLICATION_CREDENTIALS is set and is used before this token; unset it to use this one.",
              file=sys.stderr)
    return 0


def _authorize(args) -> int:
    from .. import login as flows

    opener = (lambda url: None) if args.no_open else None
    blob = flows.authorize(client_secrets=args.client_secrets, scopes=[args.scope], auth_uri=args.auth_uri,
                           token_uri=args.token_uri, open_browser=opener)
    print("Paste this line into 'drivesync login --no-browser' on the other machine "
          "(it is a secret: it grants access to your Drive):", file=sys.stderr, flush=True)
    print(blob, flush=True)
    return 0


def _whoami(args) -> int:
    from .. import login as flows

    who = asyncio.run(flows.whoami_async(_settings(args), credentials=args.credentials, subject=args.impersonate))
    print(f"credentials: {who['source']}")
    print(f"account: {_account(who)}")
    print(f"storage: {_quota(who['quota'])}")
    return 0


def _account(who: dict) -> str:
    name, email = who.get("name"), who.get("email")
    if name and email:
        return f"{name} <{email}>"
    return email or name or "(unknown)"


def _quota(q: dict) -> str:
    usage, limit = q.get("usage"), q.get("limit")
    if usage is None:
        return "(not reported)"
    if not limit:
        return f"{human(usage)} used (no limit)"
    return f"{human(usage)} used of {human(limit)} ({100.0 * usage / limit:.0f}%)"


def human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover
