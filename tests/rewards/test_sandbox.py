"""Hostile programs in the sandbox: each test runs one, then checks the host."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from r1.rewards.sandbox import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_COUNT,
    SandboxLimits,
    run_many,
    run_python,
    sandbox_protections,
)

REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(cpu_seconds=1, wall_seconds=2)


def require(name: str) -> None:
    protections = sandbox_protections()
    if not protections[name]:
        pytest.skip(f"sandbox protection {name!r} is not active on this host: {protections}")


def live_processes() -> list[dict[str, str]]:
    """/proc/<pid>/status fields of every process that is not a zombie."""
    processes = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "status").read_text()
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if fields["State"].startswith("Z"):
            continue
        fields["Pid"] = entry.name
        fields["Pgid"] = stat.rpartition(")")[2].split()[2]
        processes.append(fields)
    return processes


def uid_of(process: dict[str, str]) -> int:
    return int(process["Uid"].split()[0])


def survivors(
    match: Callable[[dict[str, str]], bool], timeout: float = 2.0
) -> list[dict[str, str]]:
    """Live processes that ``match``, once there are none or ``timeout`` has passed.

    Killed processes are reaped by init shortly after the kill, hence the wait. (Checks by
    uid would race with other test runs: a sandbox uid is reused once released.)
    """
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in live_processes() if match(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_output_exit_status_and_stdin() -> None:
    code = (
        "import sys\n"
        "print(sys.stdin.read().upper(), end='')\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    result = run_python(code, stdin="héllo\nworld\n")
    assert result.stdout == "HÉLLO\nWORLD\n"
    assert result.stderr == "to stderr\n"
    assert (result.returncode, result.timed_out, result.ok) == (3, False, False)
    assert run_python("print(input())", "x").ok


@pytest.mark.parametrize(
    "code",
    ["\x00", "print('\ud800')", "def f(:\n", "raise SystemExit('bye')", "import os; os._exit(0)"],
)
def test_broken_code_never_raises(code: str) -> None:
    result = run_python(code, limits=FAST)
    assert not result.timed_out
    assert result.returncode is not None


def test_identity_and_rlimits() -> None:
    limits = SandboxLimits(cpu_seconds=2, memory_mb=256, max_processes=8, max_file_bytes=4096)
    code = (
        "import os, resource\n"
        "print(os.getuid(), os.getgid(), os.getgroups())\n"
        "print(open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0])\n"
        "for name in ('CPU', 'AS', 'NPROC', 'FSIZE', 'CORE'):\n"
        "    print(name, *resource.getrlimit(getattr(resource, 'RLIMIT_' + name)))\n"
    )
    result = run_python(code, limits=limits)
    assert result.ok, result
    ids, nnp, *rlimits = result.stdout.splitlines()
    protections = sandbox_protections()
    assert nnp == ("1" if protections["no_new_privs"] else "0")
    uid, gid, groups = ids.split(" ", 2)
    if protections["dedicated_uid"]:
        assert SANDBOX_UID_BASE <= int(uid) < SANDBOX_UID_BASE + SANDBOX_UID_COUNT
        assert (gid, groups) == (uid, "[]")
    if protections["unprivileged_user"]:
        assert int(uid) != 0
    if not protections["rlimits"]:
        pytest.skip(f"rlimits are not active on this host: {protections}")
    assert rlimits == [
        "CPU 2 3",
        f"AS {256 << 20} {256 << 20}",
        "NPROC 9 9",  # the supervisor counts as one of the uid's processes
        "FSIZE 4096 4096",
        "CORE 0 0",
    ]


def test_infinite_loop_is_killed_by_the_cpu_limit() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=3)
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", limits=limits)
    elapsed = time.monotonic() - start
    assert result.timed_out and not result.ok
    assert elapsed < limits.wall_seconds + 2


def test_sleeping_program_is_killed_at_the_wall_clock_limit() -> None:
    start = time.monotonic()
    result = run_python("import time\nprint('start', flush=True)\ntime.sleep(60)\n", limits=FAST)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.stdout == "start\n"  # output before the kill is kept
    assert FAST.wall_seconds <= elapsed < FAST.wall_seconds + 2


def test_fork_bomb_is_contained() -> None:
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=2, max_processes=8)
    code = (
        "import os\n"
        "print(os.getuid(), os.getpgrp(), flush=True)\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    # Runs beside the bomb and starts a process once the bomb has used up its budget.
    neighbour = (
        "import subprocess, sys, time\n"
        "time.sleep(0.5)\n"
        "done = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True)\n"
        "print(done.stdout, end='')\n"
    )
    peak: Counter[int] = Counter()
    running = True

    def watch() -> None:  # the most processes each sandbox uid had at once
        while running:
            counts = Counter(
                uid_of(p)
                for p in live_processes()
                if SANDBOX_UID_BASE <= uid_of(p) < SANDBOX_UID_BASE + SANDBOX_UID_COUNT
                and p["PPid"] != str(os.getpid())  # not the sweep that ends the run
            )
            for uid, n in counts.items():
                peak[uid] = max(peak[uid], n)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    try:
        result, *neighbours = run_many([(code, ""), (neighbour, ""), (neighbour, "")], limits, 3)
    finally:
        running = False
        watcher.join()
    elapsed = time.monotonic() - start

    assert result.timed_out and not result.ok
    assert elapsed < limits.wall_seconds + 2
    uid, pgid = map(int, result.stdout.split()[:2])
    assert survivors(lambda p: p["Pgid"] == str(pgid)) == []
    if sandbox_protections()["dedicated_uid"]:
        # It did fork, and never beyond its budget (which includes the supervisor, not
        # counted here; + 1 for a sample taken just as the uid passes to another run).
        assert 2 <= peak[uid] <= limits.max_processes + 1, peak
        # Its budget was its own: other jobs could still start processes.
        assert [r.stdout for r in neighbours] == ["42\n"] * 2, neighbours
    assert run_python("print(1)").stdout == "1\n"


def test_processes_that_leave_the_process_group_are_killed() -> None:
    require("dedicated_uid")
    code = (
        "import os, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(60)\n"
        "print(os.getuid(), os.getpgrp(), child)\n"
    )
    start = time.monotonic()
    result = run_python(code, limits=FAST)
    elapsed = time.monotonic() - start
    assert result.ok, result
    assert elapsed < FAST.wall_seconds  # returns when the program exits, not at the timeout
    uid, pgid, child = map(int, result.stdout.split())
    assert SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + SANDBOX_UID_COUNT
    assert child != pgid
    assert survivors(lambda p: p["Pid"] == str(child)) == []


def test_job_dies_with_its_parent() -> None:
    """A reward worker killed at its time limit must not leave its programs running."""
    escape = "os.setsid()" if sandbox_protections()["dedicated_uid"] else "pass"
    code = f"import os, time\nif os.fork() == 0:\n    {escape}\ntime.sleep(60)\n"
    host = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from r1.rewards.sandbox import SandboxLimits, run_python\n"
            f"run_python({code!r}, limits=SandboxLimits(wall_seconds=60))",
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # wait for supervisor -> program -> its child
            tree = descendants(host.pid)
            if len(tree) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(tree) == 3, tree
        workdir = Path(os.readlink(f"/proc/{next(iter(tree))}/cwd"))
    finally:
        host.kill()
        host.wait()
    assert survivors(lambda p: p["Pid"] in tree) == []
    if workdir.name.startswith("r1-sandbox-"):  # the killed host could not remove it
        shutil.rmtree(workdir)


def descendants(pid: int) -> set[str]:
    children: dict[str, list[str]] = {}
    for p in live_processes():
        children.setdefault(p["PPid"], []).append(p["Pid"])
    found, todo = set(), [str(pid)]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_memory_bomb_fails_without_hurting_the_host() -> None:
    limits = SandboxLimits(memory_mb=256, wall_seconds=10)
    fits = run_python("x = bytearray(64 << 20)\nprint(len(x))", limits=limits)
    assert fits.ok, fits
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    bomb = run_python(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n", limits=limits
    )
    assert not bomb.ok and not bomb.timed_out
    assert "MemoryError" in bomb.stderr
    assert time.monotonic() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB
    assert run_python("print(1)").stdout == "1\n"


def test_writes_outside_the_sandbox_do_not_persist() -> None:
    require("mount_namespace")
    name = f"r1-sandbox-test-{uuid.uuid4().hex}"
    outside = [Path("/tmp", name), Path("/var/tmp", name), Path("/dev/shm", name), REPO / name]
    outside = [p for p in outside if p.parent.is_dir()]
    code = (
        "import os\n"
        f"for path in {[str(p) for p in outside]!r} + ['local.txt']:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('denied', path, e.strerror)\n"
        "print(open('local.txt').read())\n"
    )
    try:
        result = run_python(code)
        assert result.ok, result
        assert "wrote local.txt" in result.stdout  # the working directory is writable
        assert result.stdout.endswith("x\n")
        assert [p for p in outside if p.exists()] == []
    finally:
        for path in outside:
            path.unlink(missing_ok=True)


def test_no_network() -> None:
    require("network_namespace")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass  # reachable from the host, so the test below can fail
        listener.accept()[0].close()
        code = (
            "import socket\n"
            f"for address in [('127.0.0.1', {port}), ('1.1.1.1', 80)]:\n"
            "    try:\n"
            "        socket.create_connection(address, timeout=1).close()\n"
            "        print('connected', address)\n"
            "    except OSError as e:\n"
            "        print('failed', address, type(e).__name__)\n"
        )
        start = time.monotonic()
        result = run_python(code, limits=SandboxLimits(wall_seconds=5))
        assert result.ok, result
        assert "connected" not in result.stdout
        assert result.stdout.count("failed") == 2
        assert time.monotonic() - start < 4
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_output_flood_is_truncated_and_killed() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=2, max_output_bytes=4096)
    start = time.monotonic()
    result = run_python("while True:\n    print('x' * 1000)\n", limits=limits)
    elapsed = time.monotonic() - start
    assert result.output_truncated and result.timed_out and not result.ok
    assert len(result.stdout) == limits.max_output_bytes
    assert set(result.stdout) == {"x", "\n"}
    assert elapsed < limits.wall_seconds + 2


def test_temp_directory_is_removed() -> None:
    result = run_python("import os\nopen('junk', 'w').write('x')\nprint(os.getcwd())")
    assert result.ok, result
    workdir = Path(result.stdout.strip())
    assert workdir.is_relative_to(tempfile.gettempdir())
    assert workdir.name.startswith("r1-sandbox-")
    assert not workdir.exists()


def test_run_many_preserves_order_and_runs_in_parallel() -> None:
    jobs = [(f"import time\ntime.sleep(1)\nprint({i} * int(input()))", "3") for i in range(4)]
    start = time.monotonic()
    results = run_many(jobs, FAST, max_workers=4)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == ["0\n", "3\n", "6\n", "9\n"]
    assert all(r.ok for r in results)
    assert elapsed < 3
    assert run_many([], FAST) == []


def test_the_venv_stays_visible_wherever_it_lives():
    """A checkout under /tmp has its .venv under a directory the sandbox covers with a tmpfs;
    the venv is bound back, found from the executable (the bootstrap's sys.prefix is the base
    install under `python -S`)."""
    import os
    import sys

    from r1.rewards.sandbox import _interpreter_dirs

    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        pytest.skip("not running from a venv")
    dirs = _interpreter_dirs()
    assert any(
        os.path.realpath(venv) == d or os.path.realpath(venv).startswith(d + "/") for d in dirs
    )
