"""Functions that test_processes.py runs in child processes (importable by
name, as the spawn start method needs)."""

import time


def answer(shm):
    """Reads the parent's message and answers it."""
    message = shm.read().rstrip(b"\0")
    shm.write(b"pong:" + message + bytes(shm.size))


def increment(shm, count):
    """Adds 1 to the little-endian u64 at offset 0, `count` times, under the lock."""
    for _ in range(count):
        with shm.lock(timeout=60) as guard:
            value = int.from_bytes(guard.read(8), "little")
            guard.write((value + 1).to_bytes(8, "little"))


def hold_lock(shm, ready, mid_write):
    """Takes the lock (and starts a write if `mid_write`), says so, and
    sleeps until killed."""
    with shm.lock() as guard:
        if mid_write:
            guard.buf[0:4] = b"half"
        ready.set()
        time.sleep(600)


def hold_lock_for(shm, ready, go, seconds):
    """Takes the lock when told, and holds it for `seconds`."""
    go.wait(60)
    with shm.lock():
        ready.set()
        time.sleep(seconds)


def write_later(shm, go, seconds, data):
    """Writes `data` `seconds` after being told."""
    go.wait(60)
    time.sleep(seconds)
    shm.write(data)


def write_inherited(shm):
    """Uses a SharedMemory inherited through fork(): its methods and its buf."""
    shm.write(b"forked")
    shm.buf[6:8] = b"!!"
    with shm.lock() as guard:
        guard.write(b"F")
