"""A real Label Studio server for the tests: `label-studio` from the package index, in a virtual
environment of its own (its pins clash with annobase's), SQLite, a free loopback port.

The environment is made on first use under the user's cache directory (outside git), which takes
about two minutes here, and is reused afterwards; a lock keeps two test processes from building it at
once. The server takes one to three minutes to answer on two busy cores, so a test module starts one
and shares it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from services import _PREEXEC, _tail, free_port

LABEL_STUDIO_VERSION = "1.23.2"
STARTUP_TIMEOUT = 900.0  # seconds; migrations on first start are most of it
ADMIN = "admin@annobase.test"


def cache_dir() -> Path:
    root = os.environ.get("ANNOBASE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "annobase"
    )
    return Path(root)


def label_studio_venv() -> Path:
    """The virtual environment holding `label-studio`, made if missing."""
    venv = cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}"
    done = venv / ".installed"
    if done.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted install
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin/pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"], check=True
            )
            done.write_text(LABEL_STUDIO_VERSION)
    return venv


class LabelStudioServer:
    """`label-studio start` with an admin whose legacy token is enabled (`--enable-legacy-api-token`:
    legacy tokens are off per organisation by default). S3 credentials for presigning media come
    from the environment it is started in."""

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT):
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(20)
        self.url = ""
        self.startup_seconds: float | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> LabelStudioServer:
        venv = label_studio_venv()
        self._dir = Path(tempfile.mkdtemp(prefix="annobase-ls-"))
        port = free_port(avoid_grpc_twin=False)
        self.url = f"http://127.0.0.1:{port}"
        log = open(self._dir / "label-studio.log", "wb")
        env = {
            **os.environ,
            "LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_BASE_DATA_DIR": str(self._dir),
            "DJANGO_DB": "sqlite",
        }
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [
                str(venv / "bin/label-studio"),
                "start",
                "--no-browser",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(self._dir / "data"),
                "--username",
                ADMIN,
                "--password",
                secrets.token_hex(12),
                "--user-token",
                self.token,
                "--enable-legacy-api-token",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self._dir,
            preexec_fn=_PREEXEC,
        )
        while time.monotonic() - started < self.startup_timeout:
            if self._proc.poll() is not None:
                raise RuntimeError(f"label-studio exited: {_tail(self._dir / 'label-studio.log')}")
            try:
                if httpx.get(
                    f"{self.url}/api/current-user/whoami", headers=self.headers, timeout=5
                ).is_success:
                    self.startup_seconds = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.__exit__()
        raise RuntimeError(f"label-studio did not answer in {self.startup_timeout} s")

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, f"{self.url}{path}", headers=self.headers, timeout=120, **kwargs)
        response.raise_for_status()
        return response

    def add_user(self, email: str) -> int:
        """An annotator of the organisation; the admin submits annotations in their name."""
        return self.api("POST", "/api/users/", json={"email": email, "username": email}).json()["id"]
