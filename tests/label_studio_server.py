"""A real Label Studio server for the tests: `label-studio` from the package index, in a virtual
environment of its own (its pins clash with annobase's), SQLite, a free loopback port.

The environment is made on first use under the user's cache directory (outside git), which takes
2 minutes on an idle machine (6 with five other test runs beside it), and is reused afterwards; a lock
keeps two test processes from building it at once. Beside it goes an SQLite database Label Studio has
migrated once (`label-studio version` applies the migrations and exits): each server starts from a
copy, since the migrations are most of a first start (10 minutes on two busy cores, against one to
two from the copy). A test module starts one server and shares it.
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
DATABASE = "label_studio.sqlite3"


def cache_dir() -> Path:
    root = os.environ.get("ANNOBASE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "annobase"
    )
    return Path(root)


def label_studio_install() -> tuple[Path, Path]:
    """The virtual environment holding `label-studio` and a migrated database, made if missing."""
    venv = cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}"
    installed, database = venv / ".installed", venv / "migrated" / DATABASE
    if installed.exists() and database.exists():
        return venv, database
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists():
            shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted install
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin/pip"), "install", "-q", f"label-studio=={LABEL_STUDIO_VERSION}"], check=True
            )
            installed.write_text(LABEL_STUDIO_VERSION)
        if not database.exists():
            scratch = Path(tempfile.mkdtemp(prefix="annobase-ls-migrate-"))
            env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(scratch), "LATEST_VERSION_CHECK": "false"}
            subprocess.run(
                [str(venv / "bin/label-studio"), "version"],
                env=env,
                cwd=scratch,
                check=True,
                capture_output=True,
            )
            database.parent.mkdir(exist_ok=True)
            shutil.copy(scratch / DATABASE, database.with_suffix(".partial"))
            database.with_suffix(".partial").rename(database)  # whole or not at all
            shutil.rmtree(scratch, ignore_errors=True)
    return venv, database


class LabelStudioServer:
    """`label-studio start` with an admin whose legacy token is enabled (`--enable-legacy-api-token`:
    legacy tokens are off per organisation by default). S3 credentials for presigning media come
    from the environment it is started in."""

    def __init__(self, env: dict[str, str] | None = None, startup_timeout: float = STARTUP_TIMEOUT):
        self.extra_env = env or {}
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(20)
        self.url = ""
        self.startup_seconds: float | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> LabelStudioServer:
        venv, database = label_studio_install()
        self._dir = Path(tempfile.mkdtemp(prefix="annobase-ls-"))
        shutil.copy(database, self._dir / DATABASE)
        port = free_port(avoid_grpc_twin=False)
        self.url = f"http://127.0.0.1:{port}"
        log = open(self._dir / "label-studio.log", "wb")
        env = {
            **os.environ,
            "LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_BASE_DATA_DIR": str(self._dir),
            "DJANGO_DB": "sqlite",
            **self.extra_env,
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
