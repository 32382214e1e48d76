"""shmbox is a guest in the interpreter: no threads, no signal handlers
unless asked; and the opt-in SIGBUS handler does what it says."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest


def run(code, name):
    """Runs `code` in a fresh interpreter (with `name` defined)."""
    code = f"name = {name!r}\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )


def test_no_threads_or_signal_handlers_by_default(name):
    done = run(
        """
        import os, signal, threading
        before = {s: signal.getsignal(s) for s in (signal.SIGBUS, signal.SIGSEGV, signal.SIGCHLD)}
        import shmbox
        with shmbox.SharedMemory(name, create=True, size=64) as shm:
            with shm.lock():
                shm.write(b"x")
            shm.read_consistent()
            shm.buf[0] = 1
            try:
                shm.wait_for_change(shm.generation, timeout=0.05)
            except TimeoutError:
                pass
            after = {s: signal.getsignal(s) for s in before}
            assert after == before, (before, after)
            assert threading.active_count() == 1
            assert len(os.listdir("/proc/self/task")) == 1, os.listdir("/proc/self/task")
            with open(f"/proc/self/task/{os.getpid()}/children") as f:
                assert f.read().strip() == "", "a child process was started"
        print("ok")
        """,
        name,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"ok\n"


TRUNCATE = """
import os, shmbox
shm = shmbox.SharedMemory(name, create=True, size=1 << 16)
shm.buf[-1] = 7
if install:
    shmbox.install_sigbus_handler()
os.truncate(f"/dev/shm/shmbox.{name}", 0)   # as another process might
print(shm.buf[-1], flush=True)              # SIGBUS, unless handled
try:
    shm.read()
except shmbox.TruncatedError as e:
    print("TruncatedError:", e)
"""


@pytest.fixture
def cut(name):
    """A name for a segment that will be cut short: shmbox refuses to remove
    a file too short to hold a header, so the test removes it itself."""
    yield name
    try:
        os.unlink(f"/dev/shm/shmbox.{name}")
    except FileNotFoundError:
        pass


def test_a_cut_segment_kills_without_the_handler(cut):
    done = run(f"install = False\n{TRUNCATE}", cut)
    assert done.returncode == -signal.SIGBUS, done.stderr.decode()


def test_the_opt_in_handler_turns_a_cut_segment_into_errors(cut):
    done = run(f"install = True\n{TRUNCATE}", cut)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "0"  # the lost page reads as zeros
    assert lines[1].startswith("TruncatedError: the file of segment")
