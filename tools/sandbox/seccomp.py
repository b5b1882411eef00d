"""A small seccomp filter (classic BPF), built here and installed by the launcher.

It is a second wall, not the first: namespaces already cut the network and
the filesystem where the machine allows them. The filter

- refuses `socket()` for every address family except those allowed
  (AF_UNIX only inside a network namespace, none without one, since
  abstract Unix sockets are then shared with the host),
- refuses new namespaces (`unshare`, `clone` with CLONE_NEW*; `clone3`
  answers ENOSYS so libc falls back to `clone`, whose flags can be checked),
- refuses kernel interfaces a snippet has no use for and that widen the
  attack surface: io_uring (it can open sockets), bpf, perf events,
  userfaultfd, keyrings, mount/pivot_root/setns,
- kills the process on a foreign syscall ABI (e.g. x32 on x86_64).

Only x86_64 and aarch64 are covered; elsewhere `build_filter` returns None
and `sandbox_report()` says so.
"""

from __future__ import annotations

import errno
import platform
import socket
import struct
from dataclasses import dataclass

# Classic BPF opcodes (linux/bpf_common.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

# Offsets in struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (little-endian low words).
_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0 = 16

_CLONE_NEW_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x00000080  # CLONE_NEWTIME
)


@dataclass(frozen=True)
class _Arch:
    audit_arch: int
    syscalls: dict[str, int]
    foreign_abi_from: int | None = None  # syscall numbers at or above this belong to another ABI


_ARCHES = {
    "x86_64": _Arch(
        audit_arch=0xC000003E,
        foreign_abi_from=0x40000000,  # __X32_SYSCALL_BIT
        syscalls={
            "socket": 41, "clone": 56, "clone3": 435, "unshare": 272, "setns": 308,
            "mount": 165, "umount2": 166, "pivot_root": 155, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298,
            "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
            "fsopen": 430, "fsmount": 432, "open_tree": 428, "move_mount": 429,
        },
    ),
    "aarch64": _Arch(
        audit_arch=0xC00000B7,
        syscalls={
            "socket": 198, "clone": 220, "clone3": 435, "unshare": 97, "setns": 268,
            "mount": 40, "umount2": 39, "pivot_root": 41, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280, "perf_event_open": 241,
            "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
            "fsopen": 430, "fsmount": 432, "open_tree": 428, "move_mount": 429,
        },
    ),
}
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# Refused outright with EPERM.
_DENIED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "fsopen", "fsmount", "open_tree", "move_mount",
)
# Answered "not implemented": callers (libc, Python) fall back or report it cleanly.
_UNIMPLEMENTED = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")

DENIED_SUMMARY = [
    "socket() except allowed families", "new namespaces", "io_uring", "bpf", "perf_event_open",
    "userfaultfd", "keyrings", "mount/pivot_root/setns", "foreign syscall ABIs",
]


def machine_arch() -> str:
    arch = platform.machine().lower()
    return _ARCH_ALIASES.get(arch, arch)


def supported_arch(arch: str | None = None) -> bool:
    return (arch or machine_arch()) in _ARCHES


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build_filter(allowed_socket_families: tuple[int, ...] = (socket.AF_UNIX,), arch: str | None = None) -> bytes | None:
    """The filter program as raw `struct sock_filter[]` bytes, or None on an unknown architecture."""
    spec = _ARCHES.get(arch or machine_arch())
    if spec is None:
        return None
    nr = spec.syscalls
    prog: list[bytes] = [
        _insn(_LD_W_ABS, _OFF_ARCH),
        _insn(_JEQ_K, spec.audit_arch, jt=1, jf=0),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFF_NR),
    ]
    if spec.foreign_abi_from is not None:
        prog += [_insn(_JGE_K, spec.foreign_abi_from, jt=0, jf=1), _insn(_RET_K, _RET_KILL_PROCESS)]
    for name in _DENIED:
        prog += [_insn(_JEQ_K, nr[name], jt=0, jf=1), _insn(_RET_K, _RET_ERRNO | errno.EPERM)]
    for name in _UNIMPLEMENTED:
        prog += [_insn(_JEQ_K, nr[name], jt=0, jf=1), _insn(_RET_K, _RET_ERRNO | errno.ENOSYS)]

    # clone(flags, ...): refuse namespace flags. The block ends in returns, so the
    # accumulator it overwrites is never read again.
    clone_block = [
        _insn(_LD_W_ABS, _OFF_ARG0),
        _insn(_JSET_K, _CLONE_NEW_FLAGS, jt=0, jf=1),
        _insn(_RET_K, _RET_ERRNO | errno.EPERM),
        _insn(_RET_K, _RET_ALLOW),
    ]
    prog += [_insn(_JEQ_K, nr["clone"], jt=0, jf=len(clone_block)), *clone_block]

    # socket(family, ...): only the allowed families.
    socket_block = [_insn(_LD_W_ABS, _OFF_ARG0)]
    for family in allowed_socket_families:
        socket_block += [_insn(_JEQ_K, int(family), jt=0, jf=1), _insn(_RET_K, _RET_ALLOW)]
    socket_block.append(_insn(_RET_K, _RET_ERRNO | errno.EACCES))
    prog += [_insn(_JEQ_K, nr["socket"], jt=0, jf=len(socket_block)), *socket_block]

    prog.append(_insn(_RET_K, _RET_ALLOW))
    return b"".join(prog)
