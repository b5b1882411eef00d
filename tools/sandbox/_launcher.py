"""The first program inside the sandbox; its source is passed to `python -I -S -c`.

Standard library only, no imports from this package: it runs in a bare
interpreter (often a different one from the app's), inside the namespaces
the backend made.

It serves the backends that need Python to set up (unshare, rlimits);
bubblewrap does all of it itself. In order it:

1. (unshare backends) hides the host filesystem behind empty read-only tmpfs
   mounts, bind-mounts back the few paths the interpreter needs, masks
   site-packages, and mounts a private size-limited /tmp;
2. reads the user's code from stdin and writes it into the work directory;
3. drops privileges: to the run's uid (when started as real root) or, as root
   of a user namespace, drops every capability for good;
4. sets the rlimits, points stdin at /dev/null, sets no_new_privs and the
   seccomp filter;
5. (pid namespaces) forks, staying behind as a reaping init;
6. execs the interpreter (or shell) on the code.

Any failure before the exec exits with LAUNCHER_FAILED and a marked line
on stderr, so the parent can tell a broken sandbox from a failing snippet.
"""

import ctypes
import marshal
import os
import resource
import sys

LAUNCHER_FAILED = 125
MARKER = "allin-sandbox launcher failed:"

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
# statvfs f_flag bits (ST_*) that a bind remount inside a user namespace must keep.
ST_TO_MS = {0x1: MS_RDONLY, 0x2: MS_NOSUID, 0x4: MS_NODEV, 0x8: MS_NOEXEC,
            0x400: MS_NOATIME, 0x800: MS_NODIRATIME, 0x1000: MS_RELATIME}

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: an exec as uid 0 grants no capabilities, for good.
SECURE_NOROOT_LOCKED = 0x03

libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option, a2=0, a3=None):
    a3 = ctypes.c_ulong(0) if a3 is None else a3  # a pointer (byref) for PR_SET_SECCOMP
    return libc.prctl(ctypes.c_int(option), ctypes.c_ulong(a2), a3, ctypes.c_ulong(0), ctypes.c_ulong(0))


def _bytes(text):
    return None if text is None else text.encode()


def _mount(source, target, fstype, flags, data=None):
    rc = libc.mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data))
    _check(rc, f"mount {source or fstype} on {target}")


def _locked_flags(path):
    current = os.statvfs(path).f_flag
    return sum(ms_bit for st_bit, ms_bit in ST_TO_MS.items() if current & st_bit)


def _tmpfs(target, size, mode, read_only):
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode:o}")
    if read_only:
        _mount(None, target, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _make_mountpoint(target, is_dir):
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def setup_filesystem(fs):
    """Hide the host, keep what the interpreter needs, give a private /tmp (unshare backends)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below may propagate to the host
    # Open what stays visible before hiding its parents; mount from the open descriptors.
    keep = [(os.open(p, os.O_PATH), p, os.path.isdir(p)) for p in fs["expose"] if os.path.exists(p)]
    for path in fs["hide"]:
        _tmpfs(path, 1 << 20, 0o755, read_only=False)
    for fd, path, is_dir in keep:
        _make_mountpoint(path, is_dir)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _locked_flags(path))
        os.close(fd)
    for path in fs["hide"]:
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for path in fs["mask"]:
        if os.path.isdir(path):
            _tmpfs(path, 4096, 0o755, read_only=True)
    for path, size in fs["scratch"]:
        if os.path.isdir(path):
            _tmpfs(path, size, 0o1777, read_only=False)


def drop_privileges(cfg):
    mode = cfg["drop"]
    if mode == "uid":  # real root in a mount/net/pid namespace: become the run's own uid
        uid, gid = cfg["uid"], cfg["gid"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid):
            raise OSError("setresuid did not stick")
    elif mode == "caps":  # root of our own user namespace: no capability survives the exec
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        _check(_prctl(PR_SET_SECUREBITS, SECURE_NOROOT_LOCKED), "securebits")
        for cap in range(last + 1):
            _check(_prctl(PR_CAPBSET_DROP, cap), f"drop capability {cap}")
        _check(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), "clear ambient capabilities")


def set_rlimits(limits):
    for name, value in limits.items():
        soft, hard = value
        resource.setrlimit(getattr(resource, name), (soft, hard))


def install_seccomp(program):
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    if not program:
        return

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog)), "seccomp")


def main():
    cfg = marshal.loads(bytes.fromhex(sys.argv[1]))  # marshal: built in, unlike json (its import costs ~20 ms)
    if cfg.get("fs"):
        setup_filesystem(cfg["fs"])
    workdir = cfg["workdir"]
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    os.chdir(workdir)
    code = sys.stdin.buffer.read()
    fd = os.open(cfg["main_file"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(code)
    if cfg["drop"] == "uid":
        for path in (workdir, cfg["main_file"]):
            os.chown(path, cfg["uid"], cfg["gid"])
    drop_privileges(cfg)
    set_rlimits(cfg["rlimits"])
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    install_seccomp(cfg["seccomp"])
    if cfg.get("init"):
        become_init()
    os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])


def become_init():
    """As pid 1 of a new pid namespace, fork the snippet and reap until it ends.

    The snippet must not be pid 1 itself: the kernel drops signals that init has no
    handler for, SIGXCPU included, so the CPU limit would only bite at the hard limit.
    Returns in the child; the parent exits with the child's status (128+N for signal N,
    since init cannot die by a signal it sends itself).
    """
    child = os.fork()
    if child == 0:
        return
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(LAUNCHER_FAILED)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


try:
    main()
except BaseException as exc:
    try:
        os.write(2, f"{MARKER} {exc!r}\n".encode())
    finally:
        os._exit(LAUNCHER_FAILED)
