"""glibc malloc settings for training on CPU: reuse freed blocks in short steps, return them
in long ones.

glibc hands blocks above its mmap threshold (at most 32 MB) back to the OS when they are
freed and trims the heap's top, so each training step's large temporaries (logits, KV caches,
activations) are mapped and zero-filled afresh: ~940,000 page faults (3.8 GB) per
experiment=grpo_addition step. Serving them from a heap that is never trimmed reuses the
same pages: 90% fewer faults, 85% less kernel time (docs/results/alloc.md). `tune_malloc`
does that for the whole process; every script calls it first (r1.cli.run).

The price is fragmentation where big blocks of many lifetimes interleave. A micro-batch too
long for the token budget (one group of 8 x 1,024 new tokens) recomputes its activations,
and each layer's saved input lands between the layer's freed temporaries: one such group's
forward + backward on SmolLM2 peaked at 9.1 GB from the tuned heap, 3.1 GB with blocks of
8 MB and more mapped and returned (docs/scaling.md). `return_large_blocks` switches to the
latter for runs with such micro-batches; it costs them about a quarter more time in the
training passes, in page faults.

Written here rather than taken from an allocator library: jemalloc and tcmalloc need
LD_PRELOAD and a system package; mallopt needs nothing. R1_MALLOC_TUNING=0 leaves malloc
alone; on a C library that is not glibc (macOS, musl) nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("r1")

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
MALLOC_SETTINGS = {
    M_MMAP_MAX: 0,  # no mmap for large blocks: they come from the heap and stay there
    M_TRIM_THRESHOLD: -1,  # never trim the heap's top (mallopt(3): -1 disables trimming)
    M_TOP_PAD: 256 << 20,  # grow the heap in 256 MB steps (address space; touched on use)
}
# In long micro-batches: blocks from this size up are mapped and unmapped (glibc's default
# limit on mmapped blocks is 65,536). 8 MB catches a layer's activations at 1,024 tokens
# (8 rows x 1,118 positions x 576 in bf16 is 10 MB), not the small blocks in between.
LONG_MMAP_THRESHOLD = 8 << 20
LONG_MMAP_MAX = 65536
malloc_tuned = False  # set by tune_malloc (read by the tests and by return_large_blocks)


def _mallopt():
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only; raises AttributeError elsewhere
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def tune_malloc() -> bool:
    """Apply MALLOC_SETTINGS to this process's glibc malloc (later allocations; forked
    children inherit them, spawned and exec'd ones do not). False where it is switched off
    (R1_MALLOC_TUNING=0) or the C library is not glibc (macOS, musl)."""
    global malloc_tuned
    if os.environ.get("R1_MALLOC_TUNING", "1") == "0":
        log.debug("malloc tuning off (R1_MALLOC_TUNING=0)")
        return False
    mallopt = _mallopt()
    if mallopt is None:
        log.debug("malloc tuning skipped: the C library is not glibc")
        return False
    applied = [mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items()]
    malloc_tuned = all(applied)
    if not malloc_tuned:
        log.debug("malloc tuning: mallopt refused a setting (%s)", applied)
    return malloc_tuned


def return_large_blocks() -> bool:
    """From now on, blocks of LONG_MMAP_THRESHOLD and more are mapped when allocated and
    returned to the OS when freed, as glibc does by default (but at a fixed threshold), and
    the heap's free memory goes back now (malloc_trim), so that later large blocks do not
    land in it. For runs whose micro-batches outgrow the token budget (long completions),
    decided once at setup: switched per micro-batch, the heap grown by the other phases
    (generation, the reference's log-probs) would still serve the large blocks. False where
    malloc was not tuned (glibc's defaults then hold anyway)."""
    mallopt = _mallopt() if malloc_tuned else None
    if mallopt is None:
        return False
    mallopt(M_MMAP_THRESHOLD, LONG_MMAP_THRESHOLD)
    mallopt(M_MMAP_MAX, LONG_MMAP_MAX)
    ctypes.CDLL(None).malloc_trim(0)
    log.info(
        "malloc: blocks of %d MB and more are returned to the OS (long micro-batches)",
        LONG_MMAP_THRESHOLD >> 20,
    )
    return True
