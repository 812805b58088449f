"""Reward worker processes start, or fail naming why, without a fixed start-up race."""

import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection

import pytest

from r1.rewards.workers import RewardWorkers, _Worker

SPAWN = mp.get_context("spawn")


def test_a_worker_that_dies_while_starting_fails_at_once_with_its_exit_code():
    worker = _Worker(SPAWN, serve=sys.exit)  # sys.exit(conn): exits with code 1
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"exited before it was ready \(exit code 1"):
        worker.wait_until_ready(timeout_s=300)
    assert time.monotonic() - started < 60  # not the start-up limit
    assert not worker.process.is_alive()


def test_a_worker_that_never_reports_ready_is_killed_at_the_limit():
    worker = _Worker(SPAWN, serve=Connection.recv)  # waits for a message that never comes
    with pytest.raises(RuntimeError, match="not ready after 3 s"):
        worker.wait_until_ready(timeout_s=3)
    assert not worker.process.is_alive()


def test_workers_start_together_and_answer():
    pool = RewardWorkers(2)
    try:
        assert pool.map(abs, [-1, 2, -3], {}, timeout_s=30) == [1, 2, 3]
    finally:
        pool.close()
