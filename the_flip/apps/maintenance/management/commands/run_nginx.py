"""Render deploy/nginx.conf for this machine and run nginx on it (supervisord's "nginx").

The template's @NAME@ placeholders come from the environment (PORT, BIND_HOST,
FORWARDED_ALLOW_IPS, FORCE_HTTPS; THE_FLIP_RUN_DIR and THE_FLIP_WEB_SOCKET from deploy/start)
and from Django (body caps, the upload views' URLs, the refusal sentences), so nginx and
Django never disagree about a limit. ``--print`` writes the result to stdout instead.
The bucket's system check does not run: nginx never touches the bucket, and supervisord
restarts this program during the container's life, when a file store that does not answer
for a minute must not stop the whole container (/healthz reports it).
"""

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from the_flip.apps.maintenance import request_limits as limits
from the_flip.apps.maintenance.uploads import too_large_message
from the_flip.storage import SkipsStorageCheck

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "nginx.conf"
UPLOAD_LOCATION = """\
        location ~ "{regex}" {{
            client_max_body_size {cap};
            auth_request {gate};
            error_page 403 = @{kind}_body_too_large;
            error_page 413 @{kind}_upload_too_large;
            proxy_pass http://django;
        }}"""


def nginx_binary() -> str:
    # Debian puts it in /usr/sbin, which is not on a normal user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise CommandError(
            "nginx is missing. Install it: sudo apt-get install nginx (Debian/Ubuntu), "
            "brew install nginx (macOS). `make run` installs it when run as root."
        )
    return found


def real_ip_block() -> str:
    """Whose X-Forwarded-For to believe for the client's address (see deploy/nginx.conf)."""
    trusted = [item.strip() for item in os.environ.get("FORWARDED_ALLOW_IPS", "").split(",")]
    trusted = [item for item in trusted if item]
    if not trusted and not settings.FORCE_HTTPS:
        return "    # (none: nobody is in front of us)"
    lines = ["    real_ip_header X-Forwarded-For;"]
    if not trusted or "*" in trusted:
        # The proxy in front (any address) appended the client: the last entry is it.
        lines += ["    set_real_ip_from 0.0.0.0/0;", "    set_real_ip_from ::/0;"]
        lines.append("    real_ip_recursive off;")
    else:
        lines += [f"    set_real_ip_from {address};" for address in trusted]
        lines.append("    real_ip_recursive on;")
    return "\n".join(lines)


def render(run_dir: Path, socket: str) -> str:
    temp_dir = Path(settings.NGINX_TEMP_DIR)
    user = ""
    if os.geteuid() == 0:  # workers run as whoever started nginx, as without root
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    host = os.environ.get("BIND_HOST", "0.0.0.0")
    listen = f"[{host}]" if ":" in host else host
    locations = "\n".join(
        UPLOAD_LOCATION.format(
            regex=route.regex, cap=route.cap, gate=limits.GATE_PATH,
            kind="api" if route.is_api else "page",
        )
        for route in limits.upload_routes()
    )  # fmt: skip
    body_message = limits.body_too_large_message()
    upload_message = too_large_message()
    values = {
        "RUN_DIR": str(run_dir),
        "TEMP_DIR": str(temp_dir),
        "SOCKET": socket,
        "USER": user,
        "LISTEN": f"{listen}:{int(os.environ.get('PORT', '8000'))}",
        "BODY_MAX": str(settings.REQUEST_BODY_MAX_BYTES),
        "REAL_IP": real_ip_block(),
        "UPLOAD_LOCATIONS": locations,
        "GATE_PATH": limits.GATE_PATH,
        "API_BODY_TOO_LARGE": limits.nginx_string(limits.json_error(body_message)),
        "PAGE_BODY_TOO_LARGE": limits.nginx_string(limits.too_large_page(body_message)),
        "API_UPLOAD_TOO_LARGE": limits.nginx_string(limits.json_error(upload_message)),
        "PAGE_UPLOAD_TOO_LARGE": limits.nginx_string(limits.too_large_page(upload_message)),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text.replace("@LIKE_THIS@", ""))
    if left:
        raise CommandError(f"{TEMPLATE} has placeholders nobody fills in: {', '.join(left)}")
    return text


def check_port_free(host: str, port: int) -> None:
    """Fail at once, in a sentence, when PORT is taken: nginx itself retries bind() for a few
    seconds, long enough for supervisord to count each failed start as a start, so it would
    never go FATAL (and the container would never exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandError(
                f"nginx cannot listen on {host}:{port}: {error.strerror}. Another program "
                "uses this port: stop it or set PORT to a free one."
            ) from error


class Command(SkipsStorageCheck, BaseCommand):
    help = "Render deploy/nginx.conf for this machine and exec nginx on it."

    def add_arguments(self, parser):
        parser.add_argument("--print", action="store_true", help="print the config and exit")

    def handle(self, *args, **options) -> None:
        run_dir = Path(os.environ.get("THE_FLIP_RUN_DIR") or Path(settings.DATA_DIR) / "run")
        socket = os.environ.get("THE_FLIP_WEB_SOCKET") or str(run_dir / "web.sock")
        text = render(run_dir, socket)
        if options["print"]:
            self.stdout.write(text)
            return
        binary = nginx_binary()
        check_port_free(os.environ.get("BIND_HOST", "0.0.0.0"), int(os.environ.get("PORT", "8000")))
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (Path(settings.NGINX_TEMP_DIR) / name).mkdir(parents=True, exist_ok=True)
        conf = run_dir / "nginx.conf"
        conf.write_text(text)
        # -e stderr: errors before the config is read go to stderr too, not to a log file.
        command = [binary, "-e", "stderr", "-p", str(run_dir), "-c", str(conf)]
        test = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True)
        if test.returncode != 0:
            raise CommandError(f"nginx refuses {conf}: {test.stderr.strip()}")
        os.execv(binary, command)
