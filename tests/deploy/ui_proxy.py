"""The frontend image's nginx, reproduced with Debian's nginx (a unique module name: tests/ is not a package).

frontend/nginx.conf is rendered the way the image's entrypoint (nginx's 20-envsubst-on-templates.sh) renders
/etc/nginx/templates/default.conf.template: `envsubst` with only the variables NGINX_ENVSUBST_FILTER selects, the
image's ENV defaults overridden by the container's environment, into conf.d/default.conf. A main nginx.conf like the
unprivileged image's includes it inside `http`, and nginx runs as an unprivileged user (nobody when the tests run as
root) with the prefix holding html/ (the built UI), as the image's /etc/nginx does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
NGINX = os.environ.get("NGINX_PATH") or shutil.which("nginx") or "/usr/sbin/nginx"
NOBODY = 65534
MAIN_CONF = """\
# Like nginx-unprivileged's /etc/nginx/nginx.conf, with the writable paths inside the prefix.
worker_processes 1;
pid nginx.pid;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path client_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    sendfile on;
    keepalive_timeout 65;
    include conf.d/*.conf;
}
"""


def image_env() -> dict[str, str]:
    """The ENV of the frontend image's final stage (frontend/Dockerfile)."""
    final_stage = (FRONTEND / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV\s+((?:.*\\\n)*.*)$", final_stage, re.M):
        for name, value in re.findall(r"([A-Z_]+)=(\S+)", block.replace("\\\n", " ")):
            env[name] = value
    return env


def render_template(container_env: dict[str, str], out: Path) -> str:
    """conf.d/default.conf as the image's entrypoint writes it; returns the rendered text."""
    env = {**image_env(), **container_env}
    selected = [name for name in env if re.search(env["NGINX_ENVSUBST_FILTER"], name)]
    shell_format = " ".join(f"${{{name}}}" for name in selected)
    rendered = subprocess.run(["envsubst", shell_format], input=(FRONTEND / "nginx.conf").read_text(), env=env,
                              capture_output=True, text=True, check=True).stdout
    out.write_text(rendered)
    return rendered


class UiProxy:
    """Debian's nginx serving `dist` with the rendered frontend/nginx.conf in `prefix`."""

    def __init__(self, prefix: Path, dist: Path, container_env: dict[str, str]) -> None:
        self.prefix = prefix
        self.port = int(container_env["UI_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        shutil.copytree(dist, prefix / "html")  # the image's COPY --from=build /app/dist /etc/nginx/html
        (prefix / "conf.d").mkdir()
        self.rendered = render_template(container_env, prefix / "conf.d" / "default.conf")
        (prefix / "nginx.conf").write_text(MAIN_CONF)
        self.log = prefix / "nginx.log"
        self.log.touch()
        if os.geteuid() == 0:  # as in the image: not root
            for path in [prefix, *prefix.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
            prefix.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, *extra: str) -> list[str]:
        run_as = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
        return [*run_as, NGINX, "-p", f"{self.prefix}/", "-c", str(self.prefix / "nginx.conf"),
                "-e", str(self.log), *extra]

    def start(self, timeout_s: float = 30.0) -> None:
        with self.log.open("ab") as log:  # its own file: an unprivileged nginx may open it again as /dev/stdout
            test = subprocess.run(self.argv("-t"), stdout=log, stderr=subprocess.STDOUT)
        assert test.returncode == 0, f"nginx -t refused the rendered config:\n{self.log.read_text()}\n{self.rendered}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv("-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, f"nginx exited:\n{self.log.read_text()[-3000:]}"
            try:
                httpx.get(f"{self.url}/", timeout=2)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"nginx did not answer:\n{self.log.read_text()[-3000:]}"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
