"""The sandbox: ordinary programs run as expected; hostile ones are contained.

Each escape test runs one attack and asserts that it was contained, on the host as well as
in the program's own report. An attack whose protection is not active on this host (no
bubblewrap, not root) is skipped with the reason, never passed silently.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from r1.rewards.sandbox import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_COUNT,
    SandboxError,
    SandboxLimits,
    describe_protections,
    run_many,
    run_python,
    sandbox_protections,
)

REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(cpu_seconds=1, wall_seconds=2)
FORK_STORM = textwrap.dedent(
    """
    import os
    while True:
        try:
            os.fork()
        except OSError:
            pass
    """
)


def require(name: str) -> None:
    protections = sandbox_protections()
    if not protections[name]:
        pytest.skip(f"sandbox protection {name!r} is not active here: {describe_protections()}")


def processes() -> dict[str, dict[str, str]]:
    """pid -> /proc/<pid>/status fields (with Cmdline) of every process on the host."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "status").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        fields["Cmdline"] = cmdline.decode(errors="replace")
        found[entry.name] = fields
    return found


def with_marker(marker: str) -> list[dict[str, str]]:
    """Processes (zombies included) whose command line holds ``marker``."""
    return [p for p in processes().values() if marker in p["Cmdline"]]


def eventually_none(marker: str, timeout: float = 3.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while (left := with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# ---- ordinary programs --------------------------------------------------------------


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


def test_the_standard_library_and_site_packages_are_there() -> None:
    code = (
        "import json, sqlite3, ctypes, multiprocessing.shared_memory, numpy\nprint(numpy.add(2, 3))"
    )
    result = run_python(code, limits=SandboxLimits(wall_seconds=10))
    assert result.ok, result
    assert result.stdout == "5\n"


def test_identity_and_rlimits() -> None:
    limits = SandboxLimits(cpu_seconds=2, memory_mb=256, max_processes=8, max_file_bytes=4096)
    code = (
        "import os, resource\n"
        "print(os.getuid(), os.getgid(), os.getgroups())\n"
        "print(open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0])\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
        "for name in ('CPU', 'AS', 'NPROC', 'FSIZE', 'CORE'):\n"
        "    print(name, *resource.getrlimit(getattr(resource, 'RLIMIT_' + name)))\n"
    )
    result = run_python(code, limits=limits)
    assert result.ok, result
    ids, nnp, caps, *rlimits = result.stdout.splitlines()
    protections = sandbox_protections()
    uid, gid, groups = ids.split(" ", 2)
    if protections["dedicated_uid"]:
        assert SANDBOX_UID_BASE <= int(uid) < SANDBOX_UID_BASE + SANDBOX_UID_COUNT
        assert (gid, groups) == (uid, "[]")
    if protections["no_new_privs"]:
        assert (nnp, caps) == ("1", "0000000000000000")
    require("rlimits")
    assert rlimits == [
        "CPU 2 3",
        f"AS {256 << 20} {256 << 20}",
        "NPROC 8 8",
        "FSIZE 4096 4096",
        "CORE 0 0",
    ]


def test_infinite_loop_is_killed_by_the_cpu_limit() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=4)
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", limits=limits)
    assert result.timed_out and not result.ok
    assert time.monotonic() - start < limits.wall_seconds + 2


def test_sleeping_program_is_killed_at_the_wall_clock_limit() -> None:
    start = time.monotonic()
    result = run_python("import time\nprint('start', flush=True)\ntime.sleep(60)\n", limits=FAST)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.returncode is None and not result.ok
    assert result.stdout == "start\n"  # output before the kill is kept
    assert FAST.wall_seconds <= elapsed < FAST.wall_seconds + 2


def test_run_many_preserves_order_and_runs_in_parallel() -> None:
    jobs = [(f"import time\ntime.sleep(1)\nprint({i} * int(input()))", "3") for i in range(4)]
    start = time.monotonic()
    results = run_many(jobs, FAST, max_workers=4)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == ["0\n", "3\n", "6\n", "9\n"]
    assert all(r.ok for r in results)
    assert elapsed < 3.5
    assert run_many([], FAST) == []


def test_a_failed_sandbox_is_returned_in_its_jobs_place(monkeypatch) -> None:
    from r1.rewards import sandbox

    real = sandbox._run

    def flaky(plan, code, stdin, limits):
        if "boom" in code:
            raise SandboxError("setup failed: BlockingIOError")
        return real(plan, code, stdin, limits)

    monkeypatch.setattr(sandbox, "_run", flaky)
    results = run_many([("print(1)", ""), ("boom", ""), ("print(3)", "")], FAST)
    assert isinstance(results[1], SandboxError)
    assert [results[0].stdout, results[2].stdout] == ["1\n", "3\n"]


def test_protections_are_described_in_one_line() -> None:
    line = describe_protections()
    assert line.startswith("sandbox: ") and "\n" not in line
    if all(sandbox_protections().values()):
        assert "all protections hold" in line
    else:
        assert "NOT held" in line


# ---- escapes --------------------------------------------------------------------------


def test_escape_read_a_file_outside_the_working_directory(tmp_path: Path) -> None:
    require("private_filesystem")
    secret = tmp_path / "expected_output.txt"
    secret.write_text("the grader's answer")
    secret.chmod(0o644)
    for parent in [tmp_path, *tmp_path.parents]:
        parent.chmod(parent.stat().st_mode | 0o005)  # world-readable all the way down
    code = f"print(open({str(secret)!r}).read())"
    result = run_python(code, limits=FAST)
    assert "grader" not in result.stdout
    assert "FileNotFoundError" in result.stderr


def test_escape_read_this_test_file_and_the_checkout() -> None:
    require("private_filesystem")
    code = (
        "import os\n"
        f"for path in [{__file__!r}, {str(REPO / 'pyproject.toml')!r}]:\n"
        "    try:\n"
        "        print(open(path).read()[:20])\n"
        "    except OSError as e:\n"
        "        print('denied', type(e).__name__)\n"
        f"print(sorted(os.listdir({str(REPO)!r})))\n"
    )
    result = run_python(code, limits=FAST)
    assert result.ok, result
    lines = result.stdout.splitlines()
    assert lines[:2] == ["denied FileNotFoundError"] * 2
    assert "tests" not in lines[2] and "pyproject.toml" not in lines[2]  # only the venv is there
    homes = run_python("import os\nprint([d for d in ('/home', '/root') if os.listdir(d)])")
    assert "home" not in homes.stdout, homes


def test_escape_count_host_processes() -> None:
    require("pid_namespace")
    code = "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
    result = run_python(code, limits=FAST)
    assert result.ok, result
    visible = eval(result.stdout)
    assert len(processes()) > 5  # the host has processes to hide
    assert len(visible) <= 3 and max(visible) <= 3  # bwrap's init and the program itself


def test_escape_connect_to_a_loopback_server() -> None:
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
            f"for address in [('127.0.0.1', {port}), ('localhost', {port})]:\n"
            "    try:\n"
            "        socket.create_connection(address, timeout=1).close()\n"
            "        print('connected', address)\n"
            "    except OSError as e:\n"
            "        print('failed', address, type(e).__name__)\n"
        )
        result = run_python(code, limits=SandboxLimits(wall_seconds=5))
        assert result.ok, result
        assert "connected" not in result.stdout
        assert result.stdout.count("failed") == 2
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_escape_leave_an_orphan_behind() -> None:
    require("pid_namespace")
    marker = f"orphan-{uuid.uuid4().hex}"
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
        "    os._exit(0)\n"
        "for _ in range(100):  # until the orphan runs (its command line holds the marker)\n"
        "    if any(b'orphan-' in open(f'/proc/{p}/cmdline', 'rb').read()\n"
        "           for p in os.listdir('/proc') if p.isdigit()):\n"
        "        print('orphan running')\n"
        "        break\n"
        "    time.sleep(0.01)\n"
    )
    start = time.monotonic()
    result = run_python(code, limits=FAST)
    assert result.ok and result.stdout == "orphan running\n", result
    assert time.monotonic() - start < FAST.wall_seconds  # returns when the program exits
    assert with_marker(marker) == []  # gone (and reaped) by the time run_python returns


def test_escape_fork_storm_then_at_once_an_ordinary_program() -> None:
    require("process_limit")
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=2, max_processes=8)
    start = time.monotonic()
    storm = run_python(FORK_STORM, limits=limits)
    assert storm.timed_out and not storm.ok
    assert time.monotonic() - start < limits.wall_seconds + 2
    after = run_python("print(6 * 7)", limits=limits)
    assert (after.stdout, after.ok) == ("42\n", True), after
    # Beside a storm, other jobs start processes of their own.
    neighbour = "import subprocess, sys, time\ntime.sleep(0.5)\nprint(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout, end='')"
    _, *neighbours = run_many([(FORK_STORM, ""), (neighbour, ""), (neighbour, "")], limits, 3)
    assert [r.stdout for r in neighbours] == ["42\n"] * 2, neighbours


def test_escape_write_outside_the_temporary_directory() -> None:
    require("private_filesystem")
    name = f"r1-sandbox-test-{uuid.uuid4().hex}"
    outside = [REPO / name, Path(sys.prefix) / name, Path("/usr") / name, Path.home() / name]
    code = (
        f"for path in {[str(p) for p in outside]!r} + ['local.txt', '/tmp/t.txt', '/dev/shm/s']:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('denied', path)\n"
    )
    try:
        result = run_python(code, limits=FAST)
        assert result.ok, result
        assert result.stdout.count("denied") == len(outside), result.stdout
        assert "wrote local.txt" in result.stdout and "wrote /tmp/t.txt" in result.stdout
        assert [p for p in outside if p.exists()] == []
        again = run_python("import os\nprint(os.listdir('.'))", limits=FAST)
        assert again.stdout == "['main.py']\n"  # nothing persists between runs
    finally:
        for path in outside:
            path.unlink(missing_ok=True)


def test_escape_read_an_environment_secret(monkeypatch) -> None:
    monkeypatch.setenv("R1_TEST_SECRET", "hunter2")
    result = run_python("import os\nprint(dict(os.environ))", limits=FAST)
    assert result.ok, result
    assert "hunter2" not in result.stdout
    assert "R1_TEST_SECRET" not in result.stdout


def test_escape_flood_stdout() -> None:
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=2, max_output_bytes=4096)
    start = time.monotonic()
    result = run_python("while True:\n    print('x' * 1000)\n", limits=limits)
    assert result.output_truncated and result.timed_out and not result.ok
    assert len(result.stdout) == limits.max_output_bytes
    assert set(result.stdout) == {"x", "\n"}
    assert time.monotonic() - start < limits.wall_seconds + 2


def test_escape_exhaust_memory() -> None:
    require("rlimits")
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


def test_job_dies_with_its_parent() -> None:
    """A reward worker killed at its time limit must not leave its programs running."""
    marker = f"parent-death-{uuid.uuid4().hex}"
    code = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        # the marker is joined at run time: the host's own command line must not hold it
        f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', "
        f"{marker[:7]!r} + {marker[7:]!r}])\n"
    )
    host = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from r1.rewards.sandbox import SandboxLimits, run_python\n"
            f"run_python({code!r}, limits=SandboxLimits(wall_seconds=60, cpu_seconds=60))",
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 10
        while len(with_marker(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(with_marker(marker)) == 2
    finally:
        host.kill()
        host.wait()
    expected = [] if sandbox_protections()["pid_namespace"] else None
    left = eventually_none(marker)
    if expected is None:  # without a PID namespace a process that left the group survives
        pytest.skip(f"no PID namespace here: {describe_protections()}")
    assert left == expected


def test_two_processes_share_the_sandbox_without_interfering() -> None:
    """A second process runs fork storms in a loop; this one's programs are unaffected."""
    require("process_limit")
    neighbour = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "sandbox_load.py"), "--seconds", "6"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert neighbour.stdout is not None
        assert neighbour.stdout.readline().startswith("sandbox load running")
        results = []
        for i in range(12):
            # forks (its process budget is its own) and waits for the child's answer
            code = f"import os\npid = os.fork()\nif pid == 0:\n    print({i} * 2)\nelse:\n    os.waitpid(pid, 0)"
            results.append(run_python(code, limits=FAST))
            time.sleep(0.1)
        assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(12)], results
    finally:
        neighbour.wait(timeout=30)
    assert neighbour.returncode == 0


def test_threads_running_jobs_at_once_do_not_share_a_uid() -> None:
    require("dedicated_uid")
    seen: list[str] = []
    code = "import os, time\nprint(os.getuid())\ntime.sleep(0.5)"

    def one() -> None:
        seen.append(run_python(code, limits=FAST).stdout)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4, seen


def test_a_venv_under_tmp_is_bound_over_the_private_tmp(monkeypatch) -> None:
    """A checkout (and its .venv) under /tmp: the bind must come after the tmpfs on /tmp,
    or the interpreter would vanish inside the sandbox."""
    from r1.rewards import sandbox

    monkeypatch.setattr(sandbox, "_interpreter_dirs", lambda: ["/tmp/checkout/.venv"])
    plan = sandbox._Plan("/usr/bin/bwrap", False, None, None)
    args = sandbox._bwrap_args(plan, FAST, code_fd=3, status_fd=4, uid=None)
    tmpfs = max(i for i, a in enumerate(args) if a == "/tmp" and args[i - 1] == "--tmpfs")
    bind = args.index("/tmp/checkout/.venv")
    assert args[bind - 1] == "--ro-bind" and bind > tmpfs
