"""Run untrusted Python in a sandbox: bubblewrap for isolation, rlimits for resources.

`run_python(code, stdin, limits)` runs ``python -I -B main.py`` inside Debian's `bubblewrap`
(`bwrap`, what Flatpak uses) with:

* its own PID namespace and a fresh ``/proc``: no host process is visible, and when the
  program exits (or is killed at the limit) the kernel kills and reaps every process it
  started, orphans and zombies included, before `run_python` returns;
* its own network namespace (no interface but a loopback that is down), IPC and UTS
  namespaces;
* a private root filesystem: read-only binds of ``/usr`` (system libraries), the
  interpreter's prefix and the venv, plus fresh size-limited tmpfs at ``/sandbox`` (the
  working directory, holding ``main.py``), ``/tmp`` and ``/dev/shm``. No project checkout, home directory or
  other working directory is in it; nothing the program writes persists;
* a cleared environment (``PATH``, ``HOME=/sandbox``, ``LANG`` only), a new session, no
  capabilities, ``no_new_privs``;
* rlimits set by util-linux's ``prlimit``: CPU seconds, address space, processes, file size,
  open files, no core dumps;
* as root, a dedicated uid ``SANDBOX_UID_BASE + n`` per concurrent job, taken with ``flock``
  so that jobs of different processes on one host never share one, and set by util-linux's
  ``setpriv``. Root ignores RLIMIT_NPROC, and a shared uid would let one job's fork storm
  use up every other job's process budget. Not root, bwrap makes a user namespace, and the
  kernel counts RLIMIT_NPROC in it per job as well.

What it does not guarantee: programs can read what is under ``/usr`` and the interpreter's
directories, use CPU and memory up to their limits, and see host-wide ``/proc`` files such as
``/proc/meminfo``. The sandbox protects the host and the grader's files, not a reward's
logic (see `r1.rewards.code`).

Where bwrap is missing or cannot create namespaces here (a container that forbids them),
the program runs in a fresh temporary directory with rlimits and a new session only, its
process group killed at the end: it can then read the machine, use the network and leave
processes that left its group. `sandbox_protections()` says what holds; the training log
states it once at start (`describe_protections`). The mode is detected once per process by
a probe run; a failure of the detected setup in a later run raises SandboxError rather
than running with less protection. Nothing the code itself does makes `run_python` raise.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

log = logging.getLogger(__name__)

# In the range systemd documents as unused (1879048192-2147352575), so no real user or
# container mapping owns these uids.
SANDBOX_UID_BASE = 0x7A000000
SANDBOX_UID_COUNT = 256
SCRIPT_NAME = "main.py"
SANDBOX_DIR = "/sandbox"  # the program's working directory inside the sandbox
_SLOT_DIR = "/tmp/r1-sandbox-uids"  # fixed, not $TMPDIR: every process on the host must agree
_OPEN_FILES = 64
_TMPFS_FILES = 8  # a writable tmpfs holds this many files of max_file_bytes
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_POLL_S = 0.1
_KILL_GRACE_S = 2.0  # after the kill, how long the pipes may stay open
_SETUP_TOOLS = ("bwrap: ", "setpriv: ", "prlimit: ")


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

    ``returncode`` is the exit status (negative: killed by that signal; under bwrap an exit
    status 128 + N reads as signal N), or None when the wall-clock limit ended the run. ``timed_out`` is set for the wall-clock limit and for
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


@dataclass(frozen=True)
class _Plan:
    bwrap: str | None  # path of bwrap; None: rlimits-only fallback
    dedicated_uid: bool  # root: setpriv to a uid of our own per job
    prlimit: str | None
    setpriv: str | None


_plan_lock = threading.Lock()
_cached_plan: _Plan | None = None


def sandbox_protections() -> dict[str, bool]:
    """Which protections run_python applies on this host (detected once, then cached)."""
    plan = _plan()
    isolated = plan.bwrap is not None
    return {
        "bubblewrap": isolated,
        "pid_namespace": isolated,
        "private_filesystem": isolated,
        "network_namespace": isolated,
        "dedicated_uid": plan.dedicated_uid,
        "unprivileged_user": plan.dedicated_uid or os.geteuid() != 0,
        "rlimits": plan.prlimit is not None,
        "process_limit": plan.prlimit is not None and (plan.dedicated_uid or os.geteuid() != 0),
        "no_new_privs": isolated,
    }


def describe_protections() -> str:
    """One line for the training log: what the sandbox guarantees on this host."""
    protections = sandbox_protections()
    held = [name for name, on in protections.items() if on]
    missing = [name for name, on in protections.items() if not on]
    if protections["bubblewrap"] and not missing:
        return "sandbox: bubblewrap, all protections hold (" + ", ".join(held) + ")"
    hint = "" if protections["bubblewrap"] else "; install bubblewrap (`make setup` as root)"
    return (
        f"sandbox: {'bubblewrap' if protections['bubblewrap'] else 'rlimits only'}; holds: "
        f"{', '.join(held) or 'nothing'}; NOT held: {', '.join(missing)}{hint}"
    )


def run_python(code: str, stdin: str = "", limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxResult:
    """Run ``code`` as a Python program with ``stdin`` as its input, inside the sandbox."""
    return _run(_plan(), code, stdin, limits)


def run_many(
    jobs: Sequence[tuple[str, str]],
    limits: SandboxLimits = DEFAULT_LIMITS,
    max_workers: int | None = None,
) -> list[SandboxResult | SandboxError]:
    """Run ``(code, stdin)`` jobs in parallel, results in job order. A job whose sandbox
    failed gets its SandboxError in its place; the other jobs keep their results."""
    if not jobs:
        return []
    try:
        plan = _plan()
    except SandboxError as err:  # no mode works (now): every job's sandbox failed; the next
        return [err] * len(jobs)  # call detects again, as nothing was cached
    workers = min(max_workers or os.cpu_count() or 1, len(jobs))

    def one(job: tuple[str, str]) -> SandboxResult | SandboxError:
        try:
            return _run(plan, job[0], job[1], limits)
        except SandboxError as err:
            return err

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(one, jobs))


def _plan() -> _Plan:
    global _cached_plan
    with _plan_lock:
        if _cached_plan is None:
            _cached_plan = _detect()
        return _cached_plan


def _detect() -> _Plan:
    """The strongest plan whose probe run works here."""
    bwrap, prlimit, setpriv = (shutil.which(t) for t in ("bwrap", "prlimit", "setpriv"))
    root = os.geteuid() == 0
    candidates = []
    if bwrap:
        if root and setpriv:
            candidates.append(_Plan(bwrap, True, prlimit, setpriv))
        candidates.append(_Plan(bwrap, False, prlimit, setpriv))
    candidates.append(_Plan(None, False, prlimit, setpriv))
    failures = []
    for plan in candidates:
        try:
            result = _run(plan, "print('ok')", "", DEFAULT_LIMITS)
        except SandboxError as err:
            failures.append(f"{_mode(plan)}: {err}")
            continue
        if result.ok and result.stdout == "ok\n":
            if failures:
                log.warning("sandbox: stronger modes failed here: %s", "; ".join(failures))
            return plan
        failures.append(f"{_mode(plan)}: probe printed {result}")
    raise SandboxError("no sandbox mode works on this host: " + "; ".join(failures))


def _mode(plan: _Plan) -> str:
    if plan.bwrap is None:
        return "rlimits only"
    return "bubblewrap with a dedicated uid" if plan.dedicated_uid else "bubblewrap"


def _interpreter_dirs() -> list[str]:
    """The directories the interpreter runs from (venv and base prefix, the executable's
    directory), none inside another."""
    paths = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        paths.add(os.path.realpath(venv))
        paths.add(venv)
    return sorted(p for p in paths if not any(p.startswith(q.rstrip("/") + "/") for q in paths))


def _root_dirs() -> list[str]:
    """The system directories a program needs: /usr with the libc, and the top-level links
    or directories that point into it (/bin, /lib, /lib64 on a merged-/usr system)."""
    return [p for p in ("/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin") if os.path.lexists(p)]


def _bwrap_args(
    plan: _Plan, limits: SandboxLimits, code_fd: int, status_fd: int, uid: int | None
) -> list[str]:
    assert plan.bwrap is not None
    args = [
        plan.bwrap,
        "--json-status-fd",
        str(status_fd),
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
    ]
    args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if not plan.dedicated_uid:
        args.append("--unshare-user")
    made: set[str] = {"/"}

    def parents(path: str) -> None:
        # bwrap would create missing parents with mode 0700, which another uid cannot enter.
        parts = path.strip("/").split("/")[:-1]
        for i in range(len(parts)):
            parent = "/" + "/".join(parts[: i + 1])
            if parent not in made:
                made.add(parent)
                args.extend(["--perms", "0755", "--dir", parent])

    for path in _root_dirs():
        if os.path.islink(path):
            args.extend(["--symlink", os.readlink(path), path])
        else:
            args.extend(["--ro-bind", path, path])
        made.add(path)
    if os.path.isfile("/etc/ld.so.cache"):
        args.extend(["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"])
    size = str(max(_TMPFS_FILES * limits.max_file_bytes, 1 << 20))
    args += ["--proc", "/proc", "--dev", "/dev"]
    for path in ("/tmp", "/dev/shm", SANDBOX_DIR):
        args += ["--size", size, "--perms", "1777", "--tmpfs", path]
    made |= {"/proc", "/dev", "/tmp", "/dev/shm", SANDBOX_DIR}
    # After the tmpfs mounts, so that a venv under /tmp (a checkout there) is not covered.
    for path in _interpreter_dirs():
        if path == "/usr" or path.startswith("/usr/"):
            continue
        parents(path)
        args.extend(["--ro-bind", path, path])
        made.add(path)
    script = f"{SANDBOX_DIR}/{SCRIPT_NAME}"
    args += ["--perms", "0444", "--ro-bind-data", str(code_fd), script, "--chdir", SANDBOX_DIR]
    for key, value in {**_ENV, "HOME": SANDBOX_DIR}.items():
        args += ["--setenv", key, value]
    args.append("--")
    if uid is not None:
        assert plan.setpriv is not None
        args += [plan.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    return args + _prlimit_args(plan, limits) + [sys.executable, "-I", "-B", SCRIPT_NAME]


def _prlimit_args(plan: _Plan, limits: SandboxLimits) -> list[str]:
    if plan.prlimit is None:
        return []
    cpu = max(1, math.ceil(limits.cpu_seconds))
    memory = limits.memory_mb << 20
    return [
        plan.prlimit,
        f"--cpu={cpu}:{cpu + 1}",  # SIGXCPU, then SIGKILL a second later
        f"--as={memory}",
        f"--nproc={limits.max_processes}",
        f"--fsize={limits.max_file_bytes}",
        f"--nofile={_OPEN_FILES}",
        "--core=0",
        "--",
    ]


class _UidSlot:
    """A uid ``SANDBOX_UID_BASE + n`` held exclusively (flock on a root-only lock file).

    A slot is handed out only when no process of its uid is left (a holder that died
    mid-run, or a zombie nobody reaps): such a slot is skipped, never waited on.
    """

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd = fd

    @classmethod
    def acquire(cls) -> _UidSlot:
        directory = _slot_dir()
        while True:
            busy = _uids_with_processes()
            for n in range(SANDBOX_UID_COUNT):  # lowest first
                uid = SANDBOX_UID_BASE + n
                if uid in busy:
                    continue
                fd = os.open(os.path.join(directory, str(n)), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                if uid in _uids_with_processes():  # a process of it appeared meanwhile
                    os.close(fd)
                    continue
                return cls(uid, fd)
            time.sleep(0.05)

    def release(self) -> None:
        os.close(self._fd)  # releases the flock


def _slot_dir() -> str:
    try:
        os.mkdir(_SLOT_DIR, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(_SLOT_DIR)
    if not os.path.isdir(_SLOT_DIR) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise SandboxError(
            f"{_SLOT_DIR} must be a directory owned by uid {os.geteuid()}, mode 0700"
        )
    return _SLOT_DIR


def _uids_with_processes() -> set[int]:
    """Sandbox uids that own a process on this host (zombies included)."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + SANDBOX_UID_COUNT:
                found.add(uid)
    return found


def _memfd(name: str, data: str) -> int:
    fd = os.memfd_create(name)
    os.write(fd, data.encode("utf-8", errors="surrogatepass"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _run(plan: _Plan, code: str, stdin: str, limits: SandboxLimits) -> SandboxResult:
    slot = _UidSlot.acquire() if plan.dedicated_uid else None
    try:
        if plan.bwrap is not None:
            return _run_bwrap(plan, code, stdin, limits, slot.uid if slot else None)
        return _run_plain(plan, code, stdin, limits)
    finally:
        if slot is not None:
            slot.release()


def _run_bwrap(
    plan: _Plan, code: str, stdin: str, limits: SandboxLimits, uid: int | None
) -> SandboxResult:
    code_fd, stdin_fd = _memfd(SCRIPT_NAME, code), _memfd("stdin", stdin)
    status_r, status_w = os.pipe()
    try:
        proc = subprocess.Popen(
            _bwrap_args(plan, limits, code_fd, status_w, uid),
            stdin=stdin_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(code_fd, status_w),
            cwd="/",
            env={},
        )
    except OSError as err:
        os.close(status_r)
        raise SandboxError(f"could not start bwrap: {err}") from err
    finally:
        for fd in (code_fd, stdin_fd, status_w):
            os.close(fd)
    status = _Status(status_r)

    def kill() -> None:
        # Killing the namespace's init makes the kernel kill and reap every process in it;
        # bwrap exits once that is done, so proc.wait() below means "all gone".
        if _alive(proc):
            try:
                os.kill(status.child_pid() or proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the init died meanwhile; bwrap is exiting

    return _finish(proc, kill, limits, status)


def _run_plain(plan: _Plan, code: str, stdin: str, limits: SandboxLimits) -> SandboxResult:
    workdir = tempfile.mkdtemp(prefix="r1-sandbox-")
    stdin_fd = _memfd("stdin", stdin)
    try:
        script = os.path.join(workdir, SCRIPT_NAME)
        with open(script, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(code)
        try:
            proc = subprocess.Popen(
                _prlimit_args(plan, limits) + [sys.executable, "-I", "-B", SCRIPT_NAME],
                stdin=stdin_fd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env={**_ENV, "HOME": workdir},
                start_new_session=True,
            )
        except OSError as err:
            raise SandboxError(f"could not start the program: {err}") from err
        finally:
            os.close(stdin_fd)

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        return _finish(proc, kill, limits, None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Status:
    """bwrap's --json-status-fd: the pid of the sandbox's init, then its exit code."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = b""
        self._pid: int | None = None

    def feed(self, chunk: bytes) -> None:
        self.text += chunk

    def child_pid(self) -> int | None:
        if self._pid is None:
            for line in self.text.decode(errors="replace").splitlines():
                try:
                    self._pid = int(json.loads(line)["child-pid"])
                    break
                except (ValueError, KeyError, TypeError):
                    continue
        return self._pid


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def _finish(proc, kill, limits: SandboxLimits, status: _Status | None) -> SandboxResult:
    try:
        out, err, truncated, wall_timeout = _communicate(proc, kill, limits, status)
    finally:
        kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if status is not None:
            os.close(status.fd)
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    if status is not None and status.child_pid() is None:
        raise SandboxError(f"sandbox setup failed: {stderr.strip()[:500]}")
    if proc.returncode != 0 and not stdout and stderr.startswith(_SETUP_TOOLS):
        raise SandboxError(f"sandbox setup failed: {stderr.strip()[:500]}")
    returncode = proc.returncode
    if status is not None and 128 < returncode < 128 + signal.NSIG:
        returncode = 128 - returncode  # bwrap's init reports death by signal N as 128 + N
    return SandboxResult(
        stdout=stdout,
        stderr=stderr,
        returncode=None if wall_timeout else returncode,
        timed_out=wall_timeout or returncode == -signal.SIGXCPU,
        output_truncated=truncated,
    )


def _communicate(proc, kill, limits: SandboxLimits, status: _Status | None):
    """Read stdout and stderr (at most max_output_bytes each kept, the rest drained) until
    the program exits or the wall-clock limit passes, then kill the job and collect what is
    left. Returns (stdout, stderr, output truncated, wall-clock timeout)."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    cap = limits.max_output_bytes
    deadline = time.monotonic() + limits.wall_seconds
    truncated = timed_out = False
    grace_end: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        if status is not None:
            selector.register(status.fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if grace_end is None:
                if not _alive(proc):
                    grace_end = now + _KILL_GRACE_S
                elif now >= deadline:
                    timed_out = True
                    kill()
                    grace_end = now + _KILL_GRACE_S
            streams_open = any(fd in buffers for fd in selector.get_map())
            if grace_end is not None and (not streams_open or now >= grace_end):
                break
            until = deadline if grace_end is None else grace_end
            step = _POLL_S if streams_open else 0.005
            for key, _ in selector.select(min(max(until - now, 0), step)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                if status is not None and key.fd == status.fd:
                    status.feed(chunk)
                    continue
                buffer = buffers[key.fd]
                room = max(cap - len(buffer), 0)
                truncated |= len(chunk) > room
                buffer += chunk[:room]
        if status is not None and status.fd in selector.get_map():
            os.set_blocking(status.fd, False)
            try:
                status.feed(os.read(status.fd, 1 << 16))
            except BlockingIOError:
                pass
    return (
        bytes(buffers[proc.stdout.fileno()]),
        bytes(buffers[proc.stderr.fileno()]),
        truncated,
        timed_out,
    )
