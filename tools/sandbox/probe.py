"""What each backend really gives on this machine: found by running a probe snippet through it.

Nothing here trusts a feature test alone (a `bwrap` binary can exist and still
fail, e.g. when user namespaces are off): a backend is available only when the
probe ran through it and reported the isolation it promises.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .backends import BWRAP, NAMESPACE_BACKENDS, RLIMITS, UNSHARE_ROOT, UNSHARE_USERNS, prlimit_path

# Runs inside the sandbox; prints one JSON line of facts. APP_PATH is a path of
# the app that must stay invisible when the filesystem is isolated.
PROBE_CODE = """\
import json, os, resource, socket
facts = {"uid": os.getuid()}
try:  # a file, not a socket: seccomp may refuse the netlink socket if_nameindex() needs
    with open("/proc/net/dev") as dev:
        facts["interfaces"] = sorted(line.split(":")[0].strip() for line in dev if ":" in line)
except OSError:
    facts["interfaces"] = None
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    facts["inet_socket"] = True
except OSError:
    facts["inet_socket"] = False
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
facts["cap_eff"] = int(status["CapEff"], 16)
facts["seccomp"] = int(status.get("Seccomp", "0"))
facts["no_new_privs"] = int(status.get("NoNewPrivs", "0"))
facts["sees_app"] = os.path.exists(APP_PATH)
facts["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
print(json.dumps(facts))
"""


def probe_code(app_path: str) -> str:
    return f"APP_PATH = {app_path!r}\n" + PROBE_CODE


def app_marker_path() -> str:
    """A directory of the app the snippet must not see under filesystem isolation."""
    return str(Path(__file__).resolve().parent)


@dataclass
class BackendStatus:
    name: str
    available: bool
    reason: str  # why not, or what it gives
    facts: dict = field(default_factory=dict)

    @property
    def network_isolated(self) -> bool:
        interfaces = self.facts.get("interfaces")
        only_loopback = interfaces is not None and set(interfaces) <= {"lo"}
        return self.available and (only_loopback or self.facts.get("inet_socket") is False)

    @property
    def filesystem_isolated(self) -> bool:
        return self.available and self.facts.get("sees_app") is False

    @property
    def seccomp_active(self) -> bool:
        return self.available and self.facts.get("seccomp") == 2


def precondition(name: str) -> str | None:
    """Why `name` cannot work here without trying, or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if name == BWRAP and not shutil.which("bwrap"):
        return "bubblewrap is not installed (Debian: apt-get install -y bubblewrap)"
    if name == BWRAP and not prlimit_path():
        return "util-linux `prlimit` is not installed (it sets the limits inside bubblewrap)"
    if name in (UNSHARE_USERNS, UNSHARE_ROOT) and not shutil.which("unshare"):
        return "util-linux `unshare` is not installed"
    if name == UNSHARE_ROOT and os.geteuid() != 0:
        return "needs the app to run as root"
    return None


def judge(name: str, facts: dict) -> str | None:
    """Why a probe's facts fall short of what `name` promises, or None."""
    if facts.get("cap_eff") != 0:
        return "the snippet still held capabilities"
    if facts.get("no_new_privs") != 1:
        return "no_new_privs was not set"
    if name in NAMESPACE_BACKENDS:
        interfaces = facts.get("interfaces")
        if interfaces is not None and not set(interfaces) <= {"lo"}:
            return f"the snippet saw network interfaces {interfaces}"
        if facts.get("sees_app"):
            return "the snippet could see the app's files"
    if os.geteuid() == 0 and facts.get("uid") == 0 and name in (RLIMITS, UNSHARE_ROOT, BWRAP):
        return "the snippet ran as root"
    return None


def parse_facts(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            facts = json.loads(line)
        except ValueError:
            continue
        if isinstance(facts, dict):
            return facts
    return None
