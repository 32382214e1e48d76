"""A short benchmark: shmbox against multiprocessing.shared_memory.

    python -m shmbox.bench [--rounds N] [--iterations N] [--markdown] [--output FILE]

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
import os
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


TITLES = {
    "write": "Lock + write 64 B + unlock",
    "read": "A whole (consistent) copy of 64 B",
}


def summarize(times, base_times):
    """(median ns per call, median ratio, min ratio, max ratio)."""
    ratios = [t / b for t, b in zip(times, base_times)]
    return statistics.median(times), statistics.median(ratios), min(ratios), max(ratios)


def report(results, markdown):
    lines = []
    for group, rows in results.items():
        base_times = rows[0][1]
        if markdown:
            lines += [
                f"## {TITLES[group]}",
                "",
                "| case | ns per call (median) | ratio to the first row (median) | spread of the ratio |",
                "|---|---:|---:|---|",
            ]
        for label, times in rows:
            ns, ratio, low, high = summarize(times, base_times)
            if markdown:
                lines.append(f"| {label} | {ns:.0f} | {ratio:.2f}× | {low:.2f}–{high:.2f} |")
            else:
                lines.append(f"{label:<50} {ns:8.0f} ns  {ratio:5.2f}×  ({low:.2f}–{high:.2f})")
        lines.append("")
    return "\n".join(lines)


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


NOTES = """\
## Reading the figures

- Every call crosses from Python into the extension and back, which costs
  more than the shared-memory operation itself (about 15 ns in Rust, see
  BENCHMARKS.md): these figures measure what a Python program sees.
- `write(data)` takes the lock, copies, commits a new generation and
  unlocks in one call. The guard form builds a `LockGuard` object and makes
  three calls (`lock()`, `write()`, and the `with` block's exit); it is
  there for several steps under one lock.
- `read_consistent()` takes no lock: it copies, and copies again if a
  writer overlapped the copy. The stdlib has no such read: a whole copy
  needs its lock. Its unlocked `bytes(buf[:64])` is the floor (a plain
  copy), but it can return half of one write and half of another.
- The stdlib's `multiprocessing.Lock` is a POSIX semaphore that only
  processes started by `multiprocessing` can share, and that stays taken for
  good if its holder dies. shmbox's lock works between unrelated processes
  and is taken over from a dead holder (`owner_died`).
"""


def document(results, rounds, iterations):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return "\n".join([
        "# shmbox from Python: benchmarks",
        "",
        f"Every figure below comes from one run of `python -m shmbox.bench`, on {now}. "
        f"Each case ran {iterations} calls per round in {rounds} interleaved rounds; each "
        "ratio is taken within a round against the first row of its table, and the table "
        "gives the median over the rounds and the spread (lowest–highest). Read the "
        "ratios: absolute times on this shared machine move from run to run.",
        "",
        "Rerun it with `python -m shmbox.bench --output docs/BENCHMARKS-python.md` "
        "(about 10 s) after `pip install crates/shmbox-python`.",
        "",
        "| CPU | cores | Python | shmbox |",
        "|---|---|---|---|",
        f"| {_cpu()} | {os.cpu_count()} | {platform.python_implementation()} "
        f"{platform.python_version()} | {shmbox.__version__} |",
        "",
        report(results, markdown=True),
        NOTES,
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m shmbox.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--iterations", type=int, default=100_000, help="calls per case per round (default 100000)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--output", metavar="FILE", help="write the report, as Markdown, to FILE")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.iterations < 1:
        parser.error("--rounds and --iterations must be at least 1")
    results = measure(args.rounds, args.iterations)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(document(results, args.rounds, args.iterations))
        print(f"wrote {args.output}")
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
