"""How the web UI may be exposed: logins (--auth, --auth-file, WORKBENCH_AUTH), the refusal to
serve a non-loopback address without them, and the upload cap.

The UI starts training processes and reads and writes files as the server's user, so anyone who
can reach its port can do as much; on loopback only local users can, which is the default. Gradio
checks the logins (launch(auth=...)) on every page, API and file route. Passwords are never printed:
an error names the entry by its place (argument, line), not by its text.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

ENV_AUTH = "WORKBENCH_AUTH"
ENV_MAX_UPLOAD = "WORKBENCH_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 512
NEEDS_LOGIN = ("refusing to serve {host} without a login: anyone who reaches this port could train, read and "
               "write files as this user. Add --auth USER:PASSWORD, --auth-file FILE or WORKBENCH_AUTH=USER:PASSWORD, "
               "or --insecure to accept the risk (a trusted network only).")
INSECURE = ("!" * 78 + "\n!! WARNING: --insecure: serving {host} with NO login. Anyone who reaches this port can "
            "start\n!! training, read the dataset and saves folders and delete runs as this user.\n" + "!" * 78)


class LoginError(ValueError):
    """A malformed login entry; the message says where, never the entry itself."""


def parse_login(entry: str, where: str) -> tuple[str, str]:
    """USER:PASSWORD (the first ':' splits, so a password may hold ':'), both non-empty."""
    user, sep, password = entry.strip().partition(":")
    if not sep or not user.strip() or not password:
        raise LoginError(f"{where}: expected USER:PASSWORD with both parts non-empty")
    return user.strip(), password


def read_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """One USER:PASSWORD a line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LoginError(f"--auth-file {path}: cannot read it ({e.__class__.__name__})") from None
    return [parse_login(line, f"--auth-file {path}, line {number}") for number, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]


def logins(auth: list[str] | None, auth_file: str | None, env: str | None) -> list[tuple[str, str]]:
    """Every login given: --auth (repeatable), --auth-file, and WORKBENCH_AUTH (comma-separated)."""
    found = [parse_login(entry, f"--auth #{number}") for number, entry in enumerate(auth or [], 1)]
    if auth_file:
        found += read_auth_file(auth_file)
    found += [parse_login(entry, f"{ENV_AUTH} entry #{number}")
              for number, entry in enumerate((env or "").split(","), 1) if entry.strip()]
    return found


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; any other name may resolve to a public address."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def max_upload_mb(env: dict | None = None) -> int:
    """The default of --max-upload-mb: WORKBENCH_MAX_UPLOAD_MB, else 512."""
    value = (env if env is not None else os.environ).get(ENV_MAX_UPLOAD, "").strip()
    return int(value) if value else DEFAULT_MAX_UPLOAD_MB


# Gradio embeds its API description in every page it serves, the login page included, and a
# dropdown's parameter there lists its choices: run folder paths, dataset and model names. Those are
# the server's data, not the API's shape; only the types stay.
VALUE_KEYS = ("parameter_default", "example_input")  # kept as None: Gradio's snippet makers read them


def without_values(info):
    """An API description (Blocks.get_api_info's) without any parameter's choices, default or example."""
    if isinstance(info, list):
        return [without_values(item) for item in info]
    if not isinstance(info, dict):
        return info
    out = {key: None if key in VALUE_KEYS else without_values(value) for key, value in info.items() if key != "enum"}
    python_type = out.get("python_type")
    if isinstance(python_type, dict) and str(python_type.get("type", "")).startswith("Literal["):
        out["python_type"] = {**python_type, "type": "str"}
    return out


def describe_api_without_values(demo) -> None:
    """Make the app's API description (/gradio_api/info, and the one each page embeds) name no value."""
    describe = demo.get_api_info
    demo.get_api_info = lambda *args, **kwargs: without_values(describe(*args, **kwargs))
