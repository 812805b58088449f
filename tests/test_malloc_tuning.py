"""Every script's entry (r1.cli.run) tunes glibc's malloc so that large freed blocks stay in
the heap for reuse (issue 17's page-fault storm), and long micro-batches return them again
(r1.malloc.return_large_blocks): checked by page faults counted, not timed."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from r1 import cli

# Through the real entry: cli.run(main). Allocate, touch and free a 64 MB block (larger than
# glibc's largest mmap threshold) ten times, after once to warm up, and count the minor page
# faults: glibc's default maps and zero-fills it afresh each time (16,384 faults of 4 KB
# pages per round), the tuned heap reuses the same pages; after return_large_blocks the
# block is mapped afresh again.
PROBE = """
import ctypes, json, resource
from r1 import cli, malloc

def main():
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    size = 64 << 20

    def round_trip():
        block = libc.malloc(size)
        libc.memset(block, 1, size)
        libc.free(block)

    def faults_of_ten_rounds():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            round_trip()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    round_trip()
    faults = faults_of_ten_rounds()
    malloc.return_large_blocks()
    returned = faults_of_ten_rounds()
    print(json.dumps({"tuned": malloc.malloc_tuned, "faults": faults, "returned": returned}))

cli.run(main)
"""


def probe(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_entry_keeps_large_freed_blocks_for_reuse():
    tuned = probe()
    untuned = probe(R1_MALLOC_TUNING="0")
    assert tuned["tuned"] and not untuned["tuned"]
    assert tuned["faults"] < 1000
    assert tuned["faults"] * 10 < untuned["faults"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_runs_with_long_micro_batches_return_large_blocks_to_the_os():
    tuned = probe()
    assert tuned["returned"] > 10 * 16_000  # 16,384 pages of 4 KB mapped afresh per round


def test_the_opt_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("R1_MALLOC_TUNING", "0")
    assert cli.tune_malloc() is False
