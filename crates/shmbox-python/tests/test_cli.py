"""Interop with the shmbox command, both ways: a segment made in Python is
read, written, watched and locked from the shell, and the other way round.

The command is $SHMBOX_CLI, else `shmbox` on PATH, else the workspace's
target/debug/shmbox. Without one these tests are skipped, saying so; with
SHMBOX_REQUIRE_CLI=1 (as in CI) they fail instead.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import shmbox
from shmbox import SharedMemory


def find_cli():
    if os.environ.get("SHMBOX_CLI"):
        return os.environ["SHMBOX_CLI"]
    on_path = shutil.which("shmbox")
    if on_path:
        return on_path
    workspace = Path(__file__).resolve().parents[3]
    target = Path(os.environ.get("CARGO_TARGET_DIR", workspace / "target"))
    built = target / "debug" / "shmbox"
    return str(built) if built.exists() else None


CLI = find_cli()
if CLI is None:
    if os.environ.get("SHMBOX_REQUIRE_CLI") == "1":
        raise RuntimeError("SHMBOX_REQUIRE_CLI=1, but no shmbox command was found")
    pytestmark = pytest.mark.skip(
        reason="no shmbox command (set SHMBOX_CLI, or cargo build -p shmbox-cli)"
    )


def cli(*args, input=None):
    done = subprocess.run(
        [CLI, *args], input=input, capture_output=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"shmbox {' '.join(args)}: {done.stderr.decode()}")
    return done.stdout


def test_cli_reads_and_writes_a_python_segment(name):
    with SharedMemory(name, create=True, size=32) as shm:
        shm.write(b"from python")
        assert cli("read", name, "--format", "raw").startswith(b"from python\0")
        cli("write", name, "--offset", "12", "from the shell")
        assert shm.read(26) == b"from python\0from the shell"
        assert shm.generation == 2
        info = cli("info", name).decode()
        assert "32" in info and "until-last-close" in info


def test_python_reads_and_writes_a_cli_segment(name):
    cli("create", name, "--size", "1K")
    cli("write", name, "made by the shell")
    with SharedMemory(name, size=1024) as shm:
        assert shm.lifetime == "persistent"
        assert shm.read(17) == b"made by the shell"
        assert shm.read_consistent(size=4) == (b"made", 1)
        shm.write(b"MADE")
    assert cli("read", name, "--len", "17").decode() == "MADE by the shell\n"
    shm = SharedMemory(name)
    shm.close()
    shm.unlink()
    assert name not in cli("list").decode()


def test_cli_watch_sees_a_python_write(name):
    with SharedMemory(name, create=True, size=16) as shm:
        watch = subprocess.Popen(
            [CLI, "watch", name, "--count", "1", "--timeout", "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Written until the watcher, once started, sees a commit and exits.
            deadline = time.monotonic() + 30
            while watch.poll() is None and time.monotonic() < deadline:
                shm.write(b"tick")
                time.sleep(0.05)
            out, err = watch.communicate(timeout=30)
        finally:
            watch.kill()
            watch.wait()
        assert watch.returncode == 0, err.decode()
        assert b"tick" in out and b"[generation " in out


def test_python_wait_is_woken_by_a_cli_write(name):
    with SharedMemory(name, create=True, size=16) as shm:
        seen = shm.generation
        writer = subprocess.Popen([CLI, "write", name, "woken"])
        try:
            assert shm.wait_for_change(seen, timeout=30) == seen + 1
            assert writer.wait(30) == 0
        finally:
            writer.kill()
            writer.wait()
        assert shm.read(5) == b"woken"


def test_the_lock_is_shared_with_the_cli(name, tmp_path):
    with SharedMemory(name, create=True, size=8) as shm:
        # Python holds it: the shell's lock times out.
        with shm.lock():
            done = subprocess.run(
                [CLI, "lock", name, "--timeout", "0.2", "--", "true"],
                capture_output=True,
                timeout=60,
            )
            assert done.returncode == 1
            assert b"timed out" in done.stderr
        # The shell holds it: Python's lock times out.
        started = tmp_path / "started"
        holder = subprocess.Popen(
            [CLI, "lock", name, "--", "sh", "-c", f"touch {started}; sleep 30"]
        )
        try:
            deadline = time.monotonic() + 30
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(TimeoutError):
                shm.lock(timeout=0.2)
            # Killing the shell's lock kills its command and frees the lock.
            holder.kill()
            holder.wait(30)
            with shm.lock(timeout=10):
                pass
        finally:
            holder.kill()
            holder.wait()

