"""What shmbox adds to the stdlib's SharedMemory, within one process."""

import gc
import math
import pickle
import threading
import time
import warnings

import pytest

import shmbox
from shmbox import SharedMemory


@pytest.fixture
def shm(name):
    with SharedMemory(name, create=True, size=16) as shm:
        yield shm


# write and read: clamped, as the FoxPro sample does


def test_write_is_clamped_and_returns_the_count(shm):
    assert shm.write(b"0123456789") == 10
    assert shm.write(b"abcdefghij", offset=12) == 4
    assert shm.read() == b"0123456789\0\0abcd"
    assert shm.write(b"x", offset=16) == 0  # at the end: nothing fits


def test_read_is_clamped(shm):
    shm.write(b"0123456789abcdef")
    assert shm.read(4) == b"0123"
    assert shm.read(100, offset=10) == b"abcdef"
    assert shm.read(offset=16) == b""


@pytest.mark.parametrize("call", [
    lambda s: s.write(b"x", offset=17),
    lambda s: s.read(1, offset=17),
    lambda s: s.read_consistent(offset=17),
])
def test_offset_past_the_end_is_a_value_error(shm, call):
    with pytest.raises(ValueError, match="offset 17 is past the end of the segment"):
        call(shm)


@pytest.mark.parametrize("call, message", [
    (lambda s: s.write(b"x", offset=-1), "offset must be 0 or more"),
    (lambda s: s.read(-1), "size must be 0 or more"),
    (lambda s: s.read(1, offset=-3), "offset must be 0 or more"),
])
def test_negative_offsets_and_sizes_are_value_errors(shm, call, message):
    with pytest.raises(ValueError, match=message):
        call(shm)


def test_write_takes_any_buffer(shm):
    import array

    assert shm.write(bytearray(b"ab")) == 2
    assert shm.write(memoryview(b"xxcd")[2:], offset=2) == 2
    assert shm.write(array.array("B", [101, 102]), offset=4) == 2
    assert shm.read(6) == b"abcdef"
    with pytest.raises(TypeError):
        shm.write(5)
    with pytest.raises(TypeError):
        shm.write("text")


# generation and read_consistent


def test_generation_counts_committed_writes(shm):
    assert shm.generation == 0
    shm.write(b"a")
    shm.write(b"b")
    assert shm.generation == 2
    with shm.lock() as guard:
        guard.write(b"c")
        guard.write(b"d", offset=1)
    assert shm.generation == 3  # one lock, one commit
    with shm.lock():
        pass
    assert shm.generation == 3  # nothing written, nothing committed


def test_read_consistent_returns_data_and_generation(shm):
    shm.write(b"one")
    assert shm.read_consistent(size=3) == (b"one", 1)
    shm.write(b"two")
    data, generation = shm.read_consistent()
    assert data[:3] == b"two" and len(data) == 16 and generation == 2
    assert shm.read_consistent(offset=1, size=2) == (b"wo", 2)


def test_read_consistent_never_sees_a_torn_write(name):
    # A writer thread fills the segment with one repeated byte per write; a
    # torn copy would mix two of them.
    with SharedMemory(name, create=True, size=4096) as shm:
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                shm.write(bytes([i % 256]) * 4096)
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            reads = 0
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline or reads < 100:
                data, _ = shm.read_consistent()
                assert data == bytes([data[0]]) * 4096
                reads += 1
        finally:
            stop.set()
            thread.join()
        assert shm.generation > 0


# the lock


def test_lock_is_a_context_manager(shm):
    with shm.lock() as guard:
        assert isinstance(guard, shmbox.LockGuard)
        assert guard.held and guard.owner_died is None and guard.consistent
        assert shm.info().lock == "held"
    assert not guard.held
    assert shm.info().lock == "free"


def test_writes_in_the_locking_thread_go_through_the_guard(shm):
    with shm.lock():
        assert shm.write(b"inside") == 6  # would wait for itself otherwise
        assert shm.read(6) == b"inside"
        assert shm.read_consistent(size=6) == (b"inside", 0)
        assert shm.generation == 0  # committed on release
    assert shm.generation == 1


def test_lock_is_not_reentrant(shm):
    with shm.lock():
        with pytest.raises(shmbox.LockError, match="not reentrant") as caught:
            shm.lock()
        assert isinstance(caught.value, RuntimeError)


def test_release_twice_is_a_lock_error(shm):
    guard = shm.lock()
    assert guard.release() == shm.generation
    with pytest.raises(shmbox.LockError, match="already released"):
        guard.release()
    with pytest.raises(shmbox.LockError):
        guard.write(b"late")
    with guard:  # __exit__ tolerates a released guard
        pass


def test_lock_timeout_while_another_handle_holds_it(shm, name):
    other = SharedMemory(name, timeout=0.2)
    with shm.lock():
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out after 200ms waiting for the lock"):
            other.write(b"x")
        with pytest.raises(shmbox.WaitTimeoutError):
            other.lock(timeout=0)
        with pytest.raises(TimeoutError):
            other.read()
        with pytest.raises(TimeoutError, match="100ms"):
            other.lock(timeout=0.1)
        assert time.monotonic() - started >= 0.45
    other.write(b"free")
    other.close()
    assert shm.read(4) == b"free"


def test_a_waiting_lock_gets_it_when_released(shm, name):
    other = SharedMemory(name)
    got = []
    guard = shm.lock()

    def take():
        with other.lock(timeout=10):
            got.append(time.monotonic())

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.2)
    assert not got
    released = time.monotonic()
    guard.release()
    thread.join(10)
    assert got and got[0] >= released
    other.close()


def test_guard_belongs_to_its_thread(shm):
    guard = shm.lock()
    errors = []

    def misuse():
        for call in (guard.release, lambda: guard.write(b"x"), lambda: guard.consistent):
            try:
                call()
            except shmbox.LockError as e:
                errors.append(str(e))

    thread = threading.Thread(target=misuse)
    thread.start()
    thread.join()
    assert len(errors) == 3 and "only that thread" in errors[0]
    assert guard.held
    guard.release()


def test_collected_guard_releases_the_lock(shm, name):
    guard = shm.lock()
    del guard
    gc.collect()
    with SharedMemory(name) as other:
        with other.lock(timeout=0):
            pass


def test_thread_end_releases_its_locks(shm, name):
    kept = []
    thread = threading.Thread(target=lambda: kept.append(shm.lock()))
    thread.start()
    thread.join()
    # join() returns when the Python thread is done; the OS thread releases
    # its locks a moment later, as it exits.
    deadline = time.monotonic() + 10
    while kept[0].held and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not kept[0].held
    with SharedMemory(name) as other:
        with other.lock(timeout=1):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ResourceWarning: it is released
        kept.clear()
        gc.collect()


def test_guard_collected_in_another_thread_warns(shm):
    kept = []
    taken, done = threading.Event(), threading.Event()

    def holder():
        kept.append(shm.lock())
        taken.set()
        done.wait(10)  # then the thread ends, and its lock goes with it

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept.clear()
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert shm.info().lock == "held"  # still, by the holder thread
    done.set()
    thread.join()
    deadline = time.monotonic() + 10
    while shm.info().lock != "free" and time.monotonic() < deadline:
        time.sleep(0.001)
    assert shm.info().lock == "free"


def test_guard_buf_starts_a_write_committed_on_release(shm):
    before = shm.generation
    with shm.lock() as guard:
        guard.buf[0:4] = b"abcd"
        assert shm.info().writing
    assert shm.generation == before + 1
    assert shm.read_consistent(size=4) == (b"abcd", before + 1)


def test_guard_read_and_write(shm):
    with shm.lock() as guard:
        assert guard.write(b"0123456789abcdefXYZ") == 16
        assert guard.read(4, offset=12) == b"cdef"
        assert guard.read() == b"0123456789abcdef"


def test_mark_consistent_commits(shm):
    before = shm.generation
    with shm.lock() as guard:
        guard.mark_consistent()
    assert shm.generation == before + 1


# wait_for_change


def test_wait_for_change_returns_at_once_if_changed(shm):
    shm.write(b"x")
    assert shm.wait_for_change(0, timeout=0) == 1


def test_wait_for_change_times_out(shm):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="waiting for a change"):
        shm.wait_for_change(shm.generation, timeout=0.1)
    assert time.monotonic() - started >= 0.1
    with pytest.raises(TimeoutError):
        shm.wait_for_change(shm.generation, timeout=0)


def test_wait_for_change_is_woken_by_a_write(shm):
    seen = shm.generation
    timer = threading.Timer(0.1, lambda: shm.write(b"wake"))
    timer.start()
    assert shm.wait_for_change(seen, timeout=10) == seen + 1
    timer.join()


def test_wait_is_interrupted_by_ctrl_c(shm):
    import os
    import signal

    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        shm.wait_for_change(shm.generation, timeout=30)
    assert time.monotonic() - started < 5
    timer.join()


@pytest.mark.parametrize("bad", [-1, math.nan, -math.inf])
def test_bad_timeouts_are_value_errors(name, bad):
    with pytest.raises(ValueError, match="timeout must be"):
        SharedMemory(name, create=True, size=8, timeout=bad)


def test_infinite_timeouts(name):
    with SharedMemory(name, create=True, size=8, timeout=None) as shm:
        assert shm.timeout is None
        with shm.lock(timeout=math.inf):
            pass


# info, list, remove


def test_info(shm):
    shm.write(b"x")
    info = shm.info()
    assert (info.name, info.size, info.lifetime, info.generation) == (shm.name, 16, "until-last-close", 1)
    assert info.consistent and not info.writing and info.lock == "free"
    import os

    assert info.last_writer_pid == os.getpid() == info.creator_pid
    assert info.mode == 0o600 and info.owner_uid == os.getuid()
    assert abs(info.created - time.time()) < 60
    assert shmbox.info(shm.name).generation == 1
    assert "generation=1" in repr(info)


def test_list_shows_the_segment(shm):
    assert shm.name in [info.name for info in shmbox.list()]


def test_remove(name):
    shmbox.SharedMemory(name, create=True, size=8, lifetime="persistent").close()
    shmbox.remove(name)
    with pytest.raises(FileNotFoundError):
        shmbox.remove(name)


def test_remove_refuses_a_segment_in_use(shm):
    with pytest.raises(shmbox.BusyError, match="is busy"):
        shmbox.remove(shm.name)


def test_bad_lifetime_is_a_value_error(name):
    with pytest.raises(ValueError, match='lifetime must be "until-last-close" or "persistent"'):
        SharedMemory(name, create=True, size=8, lifetime="forever")


def test_size_mismatch_on_attach(shm):
    with pytest.raises(shmbox.SizeMismatchError, match="holds 16 bytes, not the 8") as caught:
        SharedMemory(shm.name, size=8)
    assert isinstance(caught.value, ValueError)
    with SharedMemory(shm.name, size=16) as same:
        assert same.size == 16


def test_exceptions_pickle(name):
    try:
        SharedMemory(name)
    except shmbox.NotFoundError as e:
        copy = pickle.loads(pickle.dumps(e))
        assert type(copy) is shmbox.NotFoundError
        assert (str(copy), copy.segment, copy.errno) == (str(e), name, e.errno)


def test_exception_hierarchy():
    builtin = {
        shmbox.NotFoundError: FileNotFoundError,
        shmbox.ExistsError: FileExistsError,
        shmbox.AccessError: PermissionError,
        shmbox.WaitTimeoutError: TimeoutError,
        shmbox.InvalidArgumentError: ValueError,
        shmbox.SizeMismatchError: ValueError,
        shmbox.ClosedError: ValueError,
        shmbox.LockError: RuntimeError,
        shmbox.NoSpaceError: OSError,
        shmbox.SystemCallError: OSError,
    }
    for cls, base in builtin.items():
        assert issubclass(cls, shmbox.Error) and issubclass(cls, base), cls
    for cls in (shmbox.InconsistentError, shmbox.CorruptError, shmbox.TruncatedError,
                shmbox.BusyError, shmbox.ForkedError, shmbox.IncompatibleVersionError,
                shmbox.NotInitializedError, shmbox.UnsupportedError):
        assert issubclass(cls, shmbox.Error)
