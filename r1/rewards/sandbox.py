"""Run untrusted Python in a separate, resource-limited process.

`run_python(code, stdin, limits)` writes the code into a fresh temporary directory and runs
`sys.executable -I -B main.py` there. The bootstrap (`_bootstrap` below, run in a fresh
interpreter) sets the child up, so nothing unsafe happens between fork and exec in the
(possibly multi-threaded) parent. Then it forks the program and stays as its supervisor:
it waits for it, kills what the program left behind and exits as the program did. If the
parent dies first (a reward worker killed at its time limit), the supervisor ends the job.
The program gets:

* its own session and process group, SIGKILLed as a whole when the program exits, at the
  wall-clock limit, and on any error in the parent;
* rlimits: CPU seconds, address space, processes, file size, open files, no core dumps;
* as root, a dedicated uid and gid per concurrent job (`SANDBOX_UID_BASE + n`, taken with
  flock so that several processes on one host never share one) and no supplementary
  groups. Root ignores RLIMIT_NPROC, and a shared uid such as nobody would let one job's
  fork bomb use up the process budget of every other job running at the same time. A uid of
  its own also lets the supervisor (or the parent, when the supervisor did not finish) kill
  every process the job left behind, even those that left the process group with setsid():
  `kill(-1, SIGKILL)` run as that uid, which cannot miss a process forked meanwhile;
* no_new_privs, so setuid binaries cannot give privileges back;
* a new network namespace: a loopback interface that is down and nothing else, so no TCP or
  UDP connection anywhere, the host's localhost included;
* a new mount namespace in which every mount is read-only; /tmp, /var/tmp and /dev/shm are
  fresh size-limited tmpfs, /run (host daemons' sockets) is hidden behind an empty tmpfs, and
  the working directory is a size-limited tmpfs owned by the job. Nothing the code writes
  persists, and it cannot fill the disk. Directories on the way to the interpreter that the
  job's uid cannot enter (a pyenv Python under /root) are covered with a tmpfs into which
  only the interpreter's directories are bind-mounted.

The program can still read what any user may read (world-readable files, the host's
process list and command lines in /proc) and use CPU and memory up to its limits.

What works is detected once per process by probe runs; `sandbox_protections()` reports it.
Protections that cannot be had are dropped, and the rest still apply:

* not root: the code runs as the caller's uid. The namespaces come from an unprivileged
  user namespace where the kernel allows one. RLIMIT_NPROC counts per uid, so the caller's
  own processes may count against it, and processes that leave the process group are not
  hunted down (RLIMIT_CPU still ends busy ones).
* namespaces refused (e.g. by a container's seccomp policy): the code can use the network
  and write wherever its uid may write (/tmp, ...), limited per file by RLIMIT_FSIZE.
* as root, when another uid cannot run the interpreter and no mount namespace can expose
  it: the code runs as root with rlimits only (RLIMIT_NPROC is not enforced for root).

A protection that was detected is then required: if setting it up fails in a later run,
`run_python` raises SandboxError rather than running the code with less protection. Nothing
the code itself does makes `run_python` raise.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import math
import os
import re
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# In the range systemd documents as unused (1879048192-2147352575), so no real user or
# container mapping owns these uids.
SANDBOX_UID_BASE = 0x7A000000
SANDBOX_UID_COUNT = 256
SCRIPT_NAME = "main.py"

_BOOTSTRAP = os.path.abspath(__file__)
# Runs the bootstrap from this file's cached bytecode; `python sandbox.py` would compile it
# on every run.
_BOOTSTRAP_LOADER = """import importlib.util, sys
spec = importlib.util.spec_from_file_location("r1_sandbox_bootstrap", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._bootstrap(module.json.loads(sys.argv[2]))
"""
_SETUP_FAILED = 125
_OPEN_FILES = 64
_TMPFS_FILES = 8  # a writable tmpfs holds this many files of max_file_bytes
_TMPFS_INODES = 1024
_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
_HIDDEN_DIRS = ("/run", "/var/run")
_KILL_GRACE_S = 1.0  # after the kill, how long to wait for the pipes to close
_POLL_S = 0.1
_SWEPT = "\0swept"  # the supervisor's last word: the program's uid has no process left
_EXEC_FAILED = "exec failed: "
_KILL_UID_CODE = """import os, sys
uid = int(sys.argv[1])
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
try:
    os.kill(-1, 9)
except ProcessLookupError:
    pass
"""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MS_STRICTATIME = 1 << 24
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_MOUNT_OPTION_FLAGS = {
    "nosuid": _MS_NOSUID,
    "nodev": _MS_NODEV,
    "noexec": _MS_NOEXEC,
    "noatime": _MS_NOATIME,
    "nodiratime": _MS_NODIRATIME,
}


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = 2
    wall_seconds: float = 5
    memory_mb: int = 512  # address space (RLIMIT_AS)
    max_processes: int = 16  # processes and threads of the job (RLIMIT_NPROC)
    max_output_bytes: int = 65536  # per stream; the rest is read and dropped
    max_file_bytes: int = 1 << 20  # RLIMIT_FSIZE

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"SandboxLimits.{f.name} must be > 0, got {getattr(self, f.name)}")


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run produced.

    ``returncode`` is the exit status (negative: killed by that signal), or None when the
    wall-clock limit ended the run. ``timed_out`` is set for the wall-clock limit and for
    the CPU limit (SIGXCPU).
    """

    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool
    output_truncated: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class SandboxError(RuntimeError):
    """The sandbox itself failed (setup, host resources); never caused by the code it runs."""


class _ExecError(SandboxError):
    """The set-up child could not start the interpreter (e.g. the uid may not run it)."""


@dataclass(frozen=True)
class _Plan:
    """The protections to set up, as detected by the probe."""

    network_namespace: bool
    mount_namespace: bool
    user_namespace: bool  # not root: the namespaces are created inside a user namespace
    dedicated_uid: bool
    rlimits: bool
    no_new_privs: bool
    # (covering directory, interpreter directories to bind back under it)
    expose: tuple[tuple[str, tuple[str, ...]], ...] = ()


_plan_lock = threading.Lock()
_cached_plan: _Plan | None = None


def sandbox_protections() -> dict[str, bool]:
    """Which protections run_python applies on this host (detected once, then cached)."""
    plan = _plan()
    return {
        "network_namespace": plan.network_namespace,
        "mount_namespace": plan.mount_namespace,
        "unprivileged_user": plan.dedicated_uid or os.geteuid() != 0,
        "dedicated_uid": plan.dedicated_uid,
        "rlimits": plan.rlimits,
        "no_new_privs": plan.no_new_privs,
    }


def run_python(code: str, stdin: str = "", limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxResult:
    """Run ``code`` as a Python program with ``stdin`` as its input, inside the sandbox."""
    return _run(_plan(), code, stdin, limits)


def run_many(
    jobs: Sequence[tuple[str, str]],
    limits: SandboxLimits = DEFAULT_LIMITS,
    max_workers: int | None = None,
) -> list[SandboxResult]:
    """Run ``(code, stdin)`` jobs in parallel (one process each); results in job order."""
    if not jobs:
        return []
    plan = _plan()
    workers = min(max_workers or os.cpu_count() or 1, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: _run(plan, job[0], job[1], limits), jobs))


def _plan() -> _Plan:
    global _cached_plan
    with _plan_lock:
        if _cached_plan is None:
            _cached_plan = _detect()
        return _cached_plan


def _detect() -> _Plan:
    """The strongest plan whose every step works here: probe, drop what failed, repeat."""
    root = os.geteuid() == 0
    plan = _Plan(
        network_namespace=True,
        mount_namespace=True,
        user_namespace=not root,
        dedicated_uid=root,
        rlimits=True,
        no_new_privs=True,
        expose=_unreachable_dirs() if root else (),
    )
    while True:
        try:
            failed = _probe(plan)
        except _ExecError:
            if not plan.dedicated_uid:
                raise
            failed = "dedicated_uid"  # the setup worked but the uid cannot run the interpreter
        if failed is None:
            return plan
        drop: dict[str, Any] = {failed: False}
        if failed == "user_namespace":
            drop.update(network_namespace=False, mount_namespace=False)
        if failed in ("mount_namespace", "dedicated_uid"):
            drop["expose"] = ()
        plan = replace(plan, **drop)


def _probe(plan: _Plan) -> str | None:
    """Name of the first setup step of ``plan`` that fails, or None if a program ran."""
    result = _run(plan, "print('ok')", "", DEFAULT_LIMITS, probe=True)
    first, _, rest = result.stdout.partition("\n")
    try:
        failed = json.loads(first)["failed"]
    except (ValueError, KeyError, TypeError):
        raise SandboxError(f"sandbox probe failed: {result}") from None
    if failed is None and (not result.ok or rest != "ok\n"):
        raise SandboxError(f"sandbox probe failed: {result}")
    return failed


def _interpreter_dirs() -> list[str]:
    """The directories the interpreter runs from (venv and base prefix, the executable's
    directory), none inside another."""
    paths = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    # A venv's python is a symlink into the base install, and `python -S` (the bootstrap)
    # reports the base prefix: find the venv from the unresolved executable's pyvenv.cfg.
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        paths.add(os.path.realpath(venv))
    return sorted(p for p in paths if not any(p.startswith(q.rstrip("/") + "/") for q in paths))


def _unreachable_dirs() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Interpreter directories that other uids cannot reach, under the first directory
    on their path that other uids cannot traverse."""
    paths = _interpreter_dirs()
    groups: dict[str, list[str]] = {}
    for path in paths:
        parts = path.split("/")[1:-1]
        ancestors = ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
        blocked = next((a for a in ancestors if not os.stat(a).st_mode & stat.S_IXOTH), None)
        if blocked is not None:
            groups.setdefault(blocked, []).append(path)
    return tuple((cover, tuple(paths)) for cover, paths in sorted(groups.items()))


class _UidSlot:
    """A uid ``SANDBOX_UID_BASE + n`` held exclusively (flock on a root-only lock file).

    The lock file says "clean" once every process of the uid has been killed; a holder that
    died mid-run leaves "busy", and the next holder kills the leftovers first.
    """

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd = fd

    @classmethod
    def acquire(cls) -> _UidSlot:
        directory = _slot_dir()
        while True:
            for n in range(SANDBOX_UID_COUNT):  # lowest first: few uids, most already clean
                fd = os.open(os.path.join(directory, str(n)), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                slot = cls(SANDBOX_UID_BASE + n, fd)
                if os.pread(fd, 5, 0) != b"clean":
                    _kill_uid(slot.uid)
                os.pwrite(fd, b"busy ", 0)
                return slot
            time.sleep(0.05)

    def release(self, clean: bool) -> None:
        if clean:
            os.pwrite(self._fd, b"clean", 0)
        os.close(self._fd)  # releases the flock


def _slot_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), "r1-sandbox-uids")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise SandboxError(f"{path} must be a directory owned by uid {os.geteuid()}, mode 0700")
    return path


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``: kill(-1) from a process running as that uid.

    A fresh interpreter rather than ``subprocess.run(..., user=uid)``: that would fork this
    (possibly large) process instead of vfork-ing it.
    """
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _KILL_UID_CODE, str(uid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={},
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise SandboxError(f"could not kill the processes of uid {uid}: {done.stderr!r}")


class _Reaper:
    """Ends a job once: SIGKILLs its process group, reads the bootstrap's status and, with a
    dedicated uid the supervisor did not sweep, kills every process of that uid."""

    def __init__(self, pgid: int, uid: int | None, status_fd: int) -> None:
        self.pgid = pgid
        self.uid = uid
        self.status_fd = status_fd
        self.setup_error = ""
        self.done = False

    def kill(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # Only the bootstrap holds the write end (its program closed it at exec), and it is
        # dead now: this read ends at once.
        with os.fdopen(self.status_fd, "rb") as f:
            status = f.read().decode("utf-8", errors="replace")
        self.setup_error = status.removesuffix(_SWEPT)
        if self.uid is not None and not status.endswith(_SWEPT):
            _kill_uid(self.uid)


def _run(
    plan: _Plan, code: str, stdin: str, limits: SandboxLimits, probe: bool = False
) -> SandboxResult:
    workdir = tempfile.mkdtemp(prefix="r1-sandbox-")
    slot: _UidSlot | None = None
    finished = False
    try:
        script = os.path.join(workdir, SCRIPT_NAME)
        with open(script, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(code)
        if plan.dedicated_uid:
            slot = _UidSlot.acquire()
            for path in (workdir, script):
                os.chown(path, slot.uid, slot.uid)
        result = _execute(plan, workdir, stdin, limits, slot.uid if slot else None, probe)
        finished = True
    finally:
        if slot is not None:
            # After an error the uid's processes may not all be dead: the next holder kills them.
            slot.release(clean=finished)
        _remove_tree(workdir)
    return result


def _execute(
    plan: _Plan, workdir: str, stdin: str, limits: SandboxLimits, uid: int | None, probe: bool
) -> SandboxResult:
    status_r, status_w = os.pipe()  # the bootstrap's setup errors; closed by a successful exec
    config = {
        "plan": asdict(plan),
        "dir": workdir,
        "uid": uid,
        "limits": asdict(limits),
        "python": sys.executable,
        "status_fd": status_w,
        "parent": os.getpid(),
        "probe": probe,
    }
    stdin_file = None
    try:
        if stdin:
            stdin_file = tempfile.TemporaryFile()
            stdin_file.write(stdin.encode("utf-8", errors="surrogatepass"))
            stdin_file.seek(0)
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP_LOADER, _BOOTSTRAP, json.dumps(config)],
            stdin=stdin_file if stdin_file is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_w,),
            cwd=workdir,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
        if stdin_file is not None:
            stdin_file.close()

    reaper = _Reaper(proc.pid, uid, status_r)
    try:
        deadline = time.monotonic() + limits.wall_seconds
        out, err, truncated, wall_timeout = _communicate(
            proc, reaper, deadline, limits.max_output_bytes
        )
    finally:
        reaper.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if reaper.setup_error.startswith(_EXEC_FAILED):
        raise _ExecError(reaper.setup_error)
    if reaper.setup_error:
        raise SandboxError(f"sandbox setup failed: {reaper.setup_error}")
    return SandboxResult(
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        returncode=None if wall_timeout else proc.returncode,
        timed_out=wall_timeout or proc.returncode == -signal.SIGXCPU,
        output_truncated=truncated,
    )


def _communicate(
    proc: subprocess.Popen[bytes], reaper: _Reaper, deadline: float, cap: int
) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout and stderr (at most ``cap`` bytes each kept, the rest drained) until the
    program exits or the deadline passes, then kill the job and collect what is left.

    Returns (stdout, stderr, output truncated, wall-clock timeout).
    """
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = timed_out = False
    grace_end: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if grace_end is None:
                if _exited(proc.pid):
                    reaper.kill()
                    grace_end = now + _KILL_GRACE_S
                elif now >= deadline:
                    timed_out = True
                    reaper.kill()
                    grace_end = now + _KILL_GRACE_S
            if grace_end is not None and (not selector.get_map() or now >= grace_end):
                break
            until = deadline if grace_end is None else grace_end
            # With both pipes closed only the exit is awaited: poll for it quickly.
            step = _POLL_S if selector.get_map() else 0.005
            for key, _ in selector.select(min(max(until - now, 0), step)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                room = max(cap - len(buffer), 0)
                truncated |= len(chunk) > room
                buffer += chunk[:room]
    return (
        bytes(buffers[proc.stdout.fileno()]),
        bytes(buffers[proc.stderr.fileno()]),
        truncated,
        timed_out,
    )


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (its pid keeps the process group)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _remove_tree(path: str) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError:
        # Code running as our own uid may have left directories we cannot list or write.
        for root, dirs, _ in os.walk(path):
            for name in dirs:
                child = os.path.join(root, name)
                if not os.path.islink(child):
                    os.chmod(child, 0o700)
        shutil.rmtree(path)


# ---- the bootstrap: runs in the child, before the exec --------------------------------


class _Libc:
    """The libc calls that Python 3.11's os module lacks."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(None, use_errno=True)
        self._lib.unshare.argtypes = (ctypes.c_int,)
        self._lib.mount.argtypes = (
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        )
        self._lib.prctl.argtypes = (ctypes.c_int,) + (ctypes.c_ulong,) * 4

    @staticmethod
    def _check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int) -> None:
        self._check(self._lib.unshare(flags), f"unshare({flags:#x})")

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        def c(s: str | None) -> bytes | None:
            return None if s is None else os.fsencode(s)

        result = self._lib.mount(c(source), c(target), c(fstype), flags, c(data))
        self._check(result, f"mount({source}, {target}, {fstype}, {flags:#x}, {data})")

    def set_no_new_privs(self) -> None:
        self._check(self._lib.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")

    def set_parent_death_signal(self, sig: int) -> None:
        self._check(self._lib.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PDEATHSIG)")

    def set_dumpable(self, dumpable: bool) -> None:
        self._check(self._lib.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0), "prctl(DUMPABLE)")


def _bootstrap(config: dict[str, Any]) -> None:
    status_fd = config["status_fd"]
    try:
        failed = _prepare(config)
        if config["probe"]:
            os.write(1, (json.dumps({"failed": failed}) + "\n").encode())
            if failed is not None:
                os._exit(0)
        sweep = config["uid"] is not None
        _die_with_parent(config["parent"], sweep)
        os.set_inheritable(status_fd, False)  # closed by the program's exec
        child = os.fork()
        if child == 0:
            python = config["python"]
            try:
                os.execv(python, [python, "-I", "-B", SCRIPT_NAME])
            except OSError as e:
                os.write(status_fd, f"{_EXEC_FAILED}{python}: {e}".encode(errors="replace"))
                os._exit(_SETUP_FAILED)
    except BaseException as e:
        os.write(status_fd, f"{type(e).__name__}: {e}".encode(errors="replace"))
        os._exit(_SETUP_FAILED)
    _supervise(child, status_fd, sweep)


def _die_with_parent(parent: int, sweep: bool) -> None:
    """End the job if the parent dies (say, a reward worker killed at its time limit): no
    one else would enforce the wall-clock limit. Set after the uid change, which clears it."""
    signal.signal(signal.SIGTERM, lambda signum, frame: _end_job(sweep))
    _Libc().set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        _end_job(sweep)


def _end_job(sweep: bool) -> None:
    if sweep:
        _kill_rest_of_uid()
    else:
        os.killpg(0, signal.SIGKILL)  # the process group, this process included
    os._exit(_SETUP_FAILED)


def _kill_rest_of_uid() -> None:
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this uid but this one
    except ProcessLookupError:
        pass


def _supervise(child: int, status_fd: int, sweep: bool) -> None:
    """Wait for the program, kill what is left of its uid, and exit as the program did."""
    _Libc().set_dumpable(False)  # the program (same uid) must not reach our status pipe
    _, status = os.waitpid(child, 0)
    if sweep:
        _kill_rest_of_uid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.write(status_fd, _SWEPT.encode())
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal whose default action is not to terminate
    os._exit(os.WEXITSTATUS(status))


def _prepare(config: dict[str, Any]) -> str | None:
    """Set up every protection of the plan, in order. A failing step raises, or in probe
    mode stops the setup and is returned by name."""
    plan = _Plan(**{**config["plan"], "expose": tuple(config["plan"]["expose"])})
    workdir = config["dir"]
    root_uid = config["uid"]
    uid, gid = (root_uid, root_uid) if root_uid is not None else (os.getuid(), os.getgid())
    with open(os.path.join(workdir, SCRIPT_NAME), "rb") as f:
        code = f.read()
    libc = _Libc()
    steps: list[tuple[str, bool, Callable[[], None]]] = [
        ("user_namespace", plan.user_namespace, lambda: _enter_user_namespace(libc)),
        ("network_namespace", plan.network_namespace, lambda: libc.unshare(_CLONE_NEWNET)),
        (
            "mount_namespace",
            plan.mount_namespace,
            lambda: _private_filesystem(libc, plan, workdir, code, uid, gid, config["limits"]),
        ),
        ("rlimits", plan.rlimits, lambda: _set_rlimits(config["limits"])),
        ("dedicated_uid", root_uid is not None, lambda: _drop_privileges(uid, gid)),
        ("no_new_privs", plan.no_new_privs, libc.set_no_new_privs),
    ]
    for name, wanted, action in steps:
        if not wanted:
            continue
        try:
            action()
        except OSError as e:
            if config["probe"]:
                return name
            raise OSError(e.errno, f"{name}: {e}") from None
    os.chdir(workdir)  # after the mounts: the tmpfs, not the directory it covers
    return None


def _enter_user_namespace(libc: _Libc) -> None:
    uid, gid = os.getuid(), os.getgid()
    libc.unshare(_CLONE_NEWUSER)
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _private_filesystem(
    libc: _Libc,
    plan: _Plan,
    workdir: str,
    code: bytes,
    uid: int,
    gid: int,
    limits: dict[str, Any],
) -> None:
    """A mount namespace where everything is read-only but fresh, size-limited tmpfs."""
    before = os.readlink("/proc/self/ns/mnt")
    libc.unshare(_CLONE_NEWNS)
    if os.readlink("/proc/self/ns/mnt") == before:  # never touch the host's mounts
        raise OSError(0, "unshare(CLONE_NEWNS) did not create a mount namespace")
    libc.mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    size = max(_TMPFS_FILES * limits["max_file_bytes"], 1 << 20)
    writable = [d for d in _WRITABLE_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    hidden = [d for d in _HIDDEN_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    hidden += [cover for cover, _ in plan.expose]
    # The interpreter directories to bind back over the tmpfs covers: those under a directory
    # other uids cannot traverse, and those under a covered directory (a venv in /tmp).
    covered = [d.rstrip("/") + "/" for d in writable + hidden]
    exposed = {path for _, paths in plan.expose for path in paths}
    exposed |= {p for p in _interpreter_dirs() if any(p.startswith(c) for c in covered)}
    # O_PATH handles of those directories, opened before anything covers them.
    sources = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in sorted(exposed)}

    for path, flags in _mount_points().items():
        # A mount point that is gone was covered by a later mount: out of reach anyway.
        with contextlib.suppress(FileNotFoundError):
            libc.mount(
                None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | flags, None
            )

    for path in sorted(writable + hidden, key=lambda p: p.count("/")):
        os.makedirs(path, exist_ok=True)
        mode = "1777" if path in writable else "0755"
        libc.mount(
            "tmpfs",
            path,
            "tmpfs",
            _MS_NOSUID | _MS_NODEV,
            f"size={size},nr_inodes={_TMPFS_INODES},mode={mode}",
        )
    for path, fd in sources.items():
        os.makedirs(path, exist_ok=True)
        libc.mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
        os.close(fd)

    os.makedirs(workdir, exist_ok=True)
    libc.mount(
        "tmpfs",
        workdir,
        "tmpfs",
        _MS_NOSUID | _MS_NODEV,
        f"size={size},nr_inodes={_TMPFS_INODES},mode=0700,uid={uid},gid={gid}",
    )
    script = os.path.join(workdir, SCRIPT_NAME)
    with open(script, "wb") as f:
        f.write(code)
    os.chown(script, uid, gid)


def _mount_points() -> dict[str, int]:
    """Every mount point, with the per-mount flags a read-only remount must keep."""
    points: dict[str, int] = {}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields_ = line.split()
            path = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields_[4])
            options = fields_[5].split(",")
            flags = sum(_MOUNT_OPTION_FLAGS.get(o, 0) for o in options)
            if "relatime" not in options and "noatime" not in options:
                flags |= _MS_STRICTATIME  # otherwise a remount turns on relatime
            points[path] = flags  # stacked mounts: the last one listed is the visible one
    return points


def _set_rlimits(limits: dict[str, Any]) -> None:
    cpu = max(1, math.ceil(limits["cpu_seconds"]))
    memory = limits["memory_mb"] << 20
    wanted = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU, then SIGKILL a second later
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_NPROC: (limits["max_processes"] + 1,) * 2,  # + the supervisor
        resource.RLIMIT_FSIZE: (limits["max_file_bytes"],) * 2,
        resource.RLIMIT_NOFILE: (_OPEN_FILES, _OPEN_FILES),
        resource.RLIMIT_CORE: (0, 0),
    }
    for kind, (soft, hard) in wanted.items():
        current_hard = resource.getrlimit(kind)[1]
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(kind, (min(soft, hard), hard))


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
