"""Reward calls in worker processes, so a call past its time limit can be stopped.

A signal cannot interrupt C code (math-verify evaluating `10**10**10` sits in one bignum
multiplication), and a thread cannot be killed; a process can. Each worker receives chunks
of samples and answers call by call, so the parent knows which call is running and since
when. A call past its limit gets its worker killed and replaced; the rest of its chunk is
requeued. Workers are started with `spawn`: forking a trainer would copy its threads and
accelerator state.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

CHUNK = 32  # samples per message: amortises pickling and pipe round trips


@dataclass(frozen=True)
class CallFailed:
    reason: str  # "timeout", "worker died", or the exception's repr


def _serve(conn: Connection) -> None:
    import r1.rewards.terms  # noqa: F401  (import the built-ins before the first timed call)
    from r1.rewards.accuracy import warm_up_math_verify

    warm_up_math_verify()  # so that no call's time limit includes math-verify's start-up
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return  # the trainer is gone (killed, or stopped by Ctrl-C): an expected end
        if message is None:
            return
        fn, params, chunk = message
        for index, sample in chunk:
            try:
                result = fn(sample, **params)
            except BaseException as err:  # noqa: BLE001 - reported to the parent as a failure
                result = CallFailed(repr(err)[:300])
            try:
                conn.send((index, result))
            except (BrokenPipeError, OSError):
                return  # the trainer is gone


# A fresh worker imports torch, Lightning and math-verify (spawn re-imports the trainer's main
# script too): about 5 s on an idle 2-core machine, and minutes when the machine is shared with
# other training runs. The limit only catches a worker that hangs; one that dies fails at once.
START_TIMEOUT_S = 600.0


class _Worker:
    def __init__(self, context, serve: Callable[[Connection], None] = _serve):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.outstanding: deque[int] = deque()
        self.deadline = 0.0

    def wait_until_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Block until the worker has imported everything; a clear error if it died first."""
        give_up = time.monotonic() + timeout_s
        while not self.conn.poll(1.0):
            if time.monotonic() > give_up:
                self.kill()
                raise RuntimeError(f"a reward worker process was not ready after {timeout_s:.0f} s")
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            message = None
        if message != "ready":
            self.process.join(timeout=5)  # it may still be exiting: read its own exit code
            self.kill()
            raise RuntimeError(
                "a reward worker process exited before it was ready "
                f"(exit code {self.process.exitcode}; its traceback is above)"
            )

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class RewardWorkers:
    def __init__(self, num_workers: int):
        self._context = mp.get_context("spawn")
        self._workers = [_Worker(self._context) for _ in range(num_workers)]  # start together
        try:
            for worker in self._workers:
                worker.wait_until_ready()
        except RuntimeError:
            for worker in self._workers:
                worker.kill()
            raise

    def map(
        self,
        fn: Callable[..., Any],
        samples: Sequence[Any],
        params: Mapping[str, Any],
        timeout_s: float,
    ) -> list[Any]:
        """fn(sample, **params) for every sample; a CallFailed where it raised or timed out."""
        results: list[Any] = [None] * len(samples)
        pending = deque(range(len(samples)))
        idle = list(self._workers)
        busy: list[_Worker] = []
        params = dict(params)
        while pending or busy:
            while idle and pending:
                worker = idle.pop()
                chunk = [pending.popleft() for _ in range(min(CHUNK, len(pending)))]
                worker.conn.send((fn, params, [(i, samples[i]) for i in chunk]))
                worker.outstanding = deque(chunk)
                worker.deadline = time.monotonic() + timeout_s
                busy.append(worker)
            wait_for = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            for conn in wait([w.conn for w in busy], timeout=wait_for):
                worker = next(w for w in busy if w.conn is conn)
                try:
                    index, result = conn.recv()
                except (EOFError, OSError):  # the worker died (e.g. killed by the OOM killer)
                    self._replace(worker, busy, idle, results, pending, "worker died")
                    continue
                results[index] = result
                worker.outstanding.remove(index)
                worker.deadline = time.monotonic() + timeout_s  # the next call's clock starts
                if not worker.outstanding:
                    busy.remove(worker)
                    idle.append(worker)
            now = time.monotonic()
            for worker in [w for w in busy if now >= w.deadline]:
                self._replace(worker, busy, idle, results, pending, "timeout")
        return results

    def _replace(self, worker, busy, idle, results, pending, reason: str) -> None:
        """The call in flight fails; the rest of the worker's chunk goes back in the queue."""
        worker.kill()
        failed = worker.outstanding.popleft()
        results[failed] = CallFailed(reason)
        pending.extendleft(reversed(worker.outstanding))
        busy.remove(worker)
        fresh = _Worker(self._context)
        fresh.wait_until_ready()
        self._workers[self._workers.index(worker)] = fresh
        idle.append(fresh)

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            worker.process.join(timeout=1)
            worker.kill()
        self._workers = []
