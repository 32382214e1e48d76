"""A short benchmark: shmbox against multiprocessing.shared_memory.

    python -m shmbox.bench [--rounds N] [--iterations N] [--markdown]

Each case runs `iterations` times per round; the rounds interleave the
cases, so that a slow moment of a shared machine hits all of them alike.
Each ratio is taken within a round, against the stdlib's case measured in
that same round, and the median over the rounds is reported with its spread.

The cases, all on 64 bytes:

- **locked write**: shmbox's ``write()`` (lock, copy, commit, unlock in one
  call) and ``with lock() as g: g.write()``, against the stdlib's
  ``with lock: shm.buf[:64] = data`` with a ``multiprocessing.Lock``;
- **consistent read**: shmbox's ``read_consistent()`` (no lock, never torn),
  against the stdlib's ``with lock: bytes(shm.buf[:64])`` (the way to get a
  whole copy there) and its unlocked ``bytes(shm.buf[:64])`` (which may be
  torn: the floor, not an alternative).

A ``multiprocessing.Lock`` is a POSIX semaphore shared by inheritance only:
unrelated processes cannot use it, and nobody releases it when its holder
dies. shmbox's lock has neither limit, which is why the comparison matters.
"""

import argparse
import multiprocessing
import platform
import statistics
import sys
import time
from multiprocessing import shared_memory

import shmbox

SIZE = 64


def _loop(body, iterations):
    """Nanoseconds per call of `body`, over `iterations` calls."""
    started = time.perf_counter_ns()
    for _ in range(iterations):
        body()
    return (time.perf_counter_ns() - started) / iterations


def _cases(shm, std, std_lock):
    data = bytes(range(SIZE))
    std_buf = std.buf

    def shmbox_write():
        shm.write(data)

    def shmbox_guard_write():
        with shm.lock() as guard:
            guard.write(data)

    def stdlib_locked_write():
        with std_lock:
            std_buf[:SIZE] = data

    def shmbox_read_consistent():
        shm.read_consistent(0, SIZE)

    def stdlib_locked_read():
        with std_lock:
            bytes(std_buf[:SIZE])

    def stdlib_unlocked_read():
        bytes(std_buf[:SIZE])

    return {
        "write": [
            ("stdlib: with Lock: buf[:64] = data", stdlib_locked_write),
            ("shmbox: write(data)", shmbox_write),
            ("shmbox: with lock() as g: g.write(data)", shmbox_guard_write),
        ],
        "read": [
            ("stdlib: with Lock: bytes(buf[:64])", stdlib_locked_read),
            ("shmbox: read_consistent(0, 64)", shmbox_read_consistent),
            ("stdlib: bytes(buf[:64]), no lock (may be torn)", stdlib_unlocked_read),
        ],
    }


def measure(rounds, iterations):
    """{group: [(label, [ns per call in each round])]}, baseline first."""
    name = f"shmbox-bench-py-{multiprocessing.current_process().pid}"
    shm = shmbox.SharedMemory(name, create=True, size=SIZE)
    std = shared_memory.SharedMemory(create=True, size=SIZE)
    std_lock = multiprocessing.Lock()
    try:
        groups = _cases(shm, std, std_lock)
        results = {g: [(label, []) for label, _ in cases] for g, cases in groups.items()}
        for cases in groups.values():  # warm up
            for _, body in cases:
                _loop(body, max(1, iterations // 10))
        for _ in range(rounds):
            for group, cases in groups.items():
                for (label, body), (_, times) in zip(cases, results[group]):
                    times.append(_loop(body, iterations))
        return results
    finally:
        shm.close()
        std.close()
        std.unlink()


def report(results, markdown):
    lines = []
    if markdown:
        lines.append("| case | ns per call (median) | ratio to the first row (median) | spread of the ratio |")
        lines.append("|---|---:|---:|---|")
    for group, rows in results.items():
        base_times = rows[0][1]
        for label, times in rows:
            ratios = [t / b for t, b in zip(times, base_times)]
            median_ns = statistics.median(times)
            ratio = statistics.median(ratios)
            spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
            if markdown:
                lines.append(f"| {label} | {median_ns:.0f} | {ratio:.2f}× | {spread} |")
            else:
                lines.append(f"{label:<50} {median_ns:8.0f} ns  {ratio:5.2f}×  ({spread})")
        if not markdown:
            lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shmbox.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--iterations", type=int, default=100_000, help="calls per case per round (default 100000)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.iterations < 1:
        parser.error("--rounds and --iterations must be at least 1")
    results = measure(args.rounds, args.iterations)
    print(
        f"shmbox {shmbox.__version__}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}, "
        f"{args.rounds} rounds of {args.iterations} calls; ratios within each round, "
        "median (min–max)"
    )
    print()
    print(report(results, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
