"""Fixtures for the shmbox tests: unique segment names, and a check that the
suite leaves nothing behind in /dev/shm."""

import itertools
import os
import uuid

import pytest

import shmbox

SHM_DIR = "/dev/shm"
# CI's leftover check (.ci/run) looks for names starting with "test-".
PREFIX = f"test-py-{os.getpid()}-{uuid.uuid4().hex[:6]}"
_counter = itertools.count()


def shm_files():
    """The shmbox segment files in /dev/shm."""
    try:
        return {f for f in os.listdir(SHM_DIR) if f.startswith("shmbox.")}
    except FileNotFoundError:
        return set()


@pytest.fixture
def name():
    """A segment name no other test, run or process uses. Whatever persistent
    segment a test leaves under it is removed afterwards."""
    n = f"{PREFIX}-{next(_counter)}"
    yield n
    try:
        shmbox.remove(n)
    except (shmbox.NotFoundError, shmbox.BusyError):
        pass


@pytest.fixture
def names():
    """A factory of unique names, cleaned up like `name`."""
    made = []

    def make():
        n = f"{PREFIX}-{next(_counter)}"
        made.append(n)
        return n

    yield make
    for n in made:
        try:
            shmbox.remove(n)
        except (shmbox.NotFoundError, shmbox.BusyError):
            pass


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """Fails the session if a segment this suite made is still in /dev/shm
    at the end: ours are named PREFIX-..., and random names psm_...."""
    before = shm_files()
    yield
    shmbox.reclaim()
    left = sorted(
        f
        for f in shm_files() - before
        if f.startswith(f"shmbox.{PREFIX}") or f.startswith("shmbox.psm_")
    )
    assert not left, f"segments left behind in /dev/shm: {left}"
