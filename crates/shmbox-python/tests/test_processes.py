"""shmbox.SharedMemory across processes, with multiprocessing's spawn start
method (and fork, where a child inherits handles)."""

import multiprocessing
import os
import signal
import threading
import time

import pytest

import shmbox
import workers
from shmbox import SharedMemory

spawn = multiprocessing.get_context("spawn")


class Children:
    """Child processes that are killed, whatever happens, when the test ends."""

    def __init__(self, ctx=spawn):
        self.ctx = ctx
        self.procs = []

    def start(self, target, *args):
        proc = self.ctx.Process(target=target, args=args, daemon=True)
        proc.start()
        self.procs.append(proc)
        return proc

    def join_all(self, timeout=120):
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            assert proc.exitcode == 0, f"child {proc.pid} ended with {proc.exitcode}"

    def kill_all(self):
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join(10)


@pytest.fixture
def children():
    kids = Children()
    yield kids
    kids.kill_all()


def test_exchange_in_both_directions(name, children):
    with SharedMemory(name, create=True, size=64) as shm:
        shm.write(b"ping")
        seen = shm.generation
        children.start(workers.answer, shm)  # pickled by name, attached there
        assert shm.wait_for_change(seen, timeout=60) == seen + 1
        assert shm.read().rstrip(b"\0") == b"pong:ping"
        children.join_all()


def test_locked_increments_from_four_processes_are_exact(name, children):
    with SharedMemory(name, create=True, size=8) as shm:
        for _ in range(4):
            children.start(workers.increment, shm, 10_000)
        children.join_all(timeout=300)
        assert int.from_bytes(shm.read(8), "little") == 40_000
        assert shm.generation == 40_000


@pytest.mark.parametrize("mid_write", [False, True])
def test_lock_of_a_killed_child_is_taken_over(name, children, mid_write):
    with SharedMemory(name, create=True, size=8) as shm:
        ready = spawn.Event()
        child = children.start(workers.hold_lock, shm, ready, mid_write)
        assert ready.wait(60), "the child never took the lock"
        assert shm.info().lock == "held"
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        started = time.monotonic()
        with shm.lock(timeout=10) as guard:
            took = time.monotonic() - started
            assert guard.owner_died is not None
            assert guard.owner_died.pid == child.pid
            assert guard.owner_died.mid_write == mid_write
            assert guard.consistent == (not mid_write)
            if mid_write:
                assert guard.read(4) == b"half"
                guard.mark_consistent()  # checked: keep it as it is
        assert took < 1.0, f"owner_died took {took:.3f} s"
        assert shm.info().owner_deaths == 1
        assert shm.read(4) == (b"half" if mid_write else bytes(4))


def test_read_after_a_writer_died_mid_write_is_inconsistent(name, children):
    with SharedMemory(name, create=True, size=8) as shm:
        ready = spawn.Event()
        child = children.start(workers.hold_lock, shm, ready, True)
        assert ready.wait(60)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        with pytest.raises(shmbox.InconsistentError, match="may be torn") as caught:
            shm.read_consistent()
        assert caught.value.generation == 0
        with pytest.raises(shmbox.InconsistentError):
            shm.read()
        shm.write(b"repaired")  # a write repairs it
        assert shm.read_consistent() == (b"repaired", 1)


def ticks_during(call):
    """Runs `call` while a Python thread records the time every 10 ms, and
    returns how many of those records fell inside the call. A call that held
    the GIL would leave the thread no chance to record anything."""
    stamps = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            stamps.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        started = time.monotonic()
        call()
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join()
    return sum(started < t < ended for t in stamps), ended - started


def test_wait_for_change_releases_the_gil(name, children):
    with SharedMemory(name, create=True, size=8) as shm:
        go = spawn.Event()
        children.start(workers.write_later, shm, go, 0.5, b"later")
        seen = shm.generation

        def wait():
            go.set()
            assert shm.wait_for_change(seen, timeout=60) == seen + 1

        ticks, took = ticks_during(wait)
        assert took >= 0.5
        assert ticks >= 10, f"a Python thread ran only {ticks} times in {took:.2f} s"
        assert shm.read(5) == b"later"
        children.join_all()


def test_waiting_for_the_lock_releases_the_gil(name, children):
    with SharedMemory(name, create=True, size=8) as shm:
        ready, go = spawn.Event(), spawn.Event()
        children.start(workers.hold_lock_for, shm, ready, go, 0.5)
        go.set()
        assert ready.wait(60)

        def lock():
            with shm.lock(timeout=60) as guard:
                assert guard.owner_died is None

        ticks, took = ticks_during(lock)
        assert took >= 0.2
        assert ticks >= 5, f"a Python thread ran only {ticks} times in {took:.2f} s"
        children.join_all()


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork() here"
)
def test_a_forked_child_reopens_its_inherited_handle(name):
    kids = Children(multiprocessing.get_context("fork"))
    try:
        with SharedMemory(name, create=True, size=8) as shm:
            shm.buf  # made before the fork: inherited with the mapping
            kids.start(workers.write_inherited, shm)
            kids.join_all()
            assert shm.read() == b"Forked!!"
            assert shm.generation == 2
            # The parent's handle, locks included, is unaffected.
            with shm.lock(timeout=1) as guard:
                assert guard.owner_died is None
    finally:
        kids.kill_all()
