"""The documented behaviours of multiprocessing.shared_memory.SharedMemory,
one test each, against shmbox.SharedMemory."""

import os
import pickle

import pytest

import shmbox
from shmbox import SharedMemory


def test_create_and_attach(name):
    with SharedMemory(name, create=True, size=16) as creator:
        creator.buf[:5] = b"hello"
        with SharedMemory(name) as attacher:
            assert bytes(attacher.buf[:5]) == b"hello"
            attacher.buf[5:7] = b"!!"
        assert bytes(creator.buf[:7]) == b"hello!!"


def test_new_segment_is_zeroed(name):
    with SharedMemory(name, create=True, size=4096) as shm:
        assert bytes(shm.buf) == bytes(4096)


def test_name_given_is_kept(name):
    with SharedMemory(name, create=True, size=8) as shm:
        assert shm.name == name
        assert os.path.exists(f"/dev/shm/shmbox.{name}")


def test_name_none_makes_a_random_name():
    with SharedMemory(create=True, size=8) as a, SharedMemory(create=True, size=8) as b:
        assert a.name.startswith("psm_") and b.name.startswith("psm_")
        assert a.name != b.name
        with SharedMemory(a.name) as again:
            assert again.size == 8


def test_name_none_without_create_is_a_value_error():
    with pytest.raises(ValueError, match="'name' can only be None if create=True"):
        SharedMemory()


def test_size_is_exact_for_creator_and_attacher(name):
    # The stdlib reports a page-rounded size (cpython #101623).
    with SharedMemory(name, create=True, size=10) as creator:
        assert creator.size == 10
        with SharedMemory(name) as attacher:
            assert attacher.size == 10
            assert len(attacher.buf) == 10


def test_buf_is_a_writable_memoryview_of_exactly_size_bytes(name):
    with SharedMemory(name, create=True, size=100) as shm:
        buf = shm.buf
        assert isinstance(buf, memoryview)
        assert (buf.format, buf.itemsize, buf.nbytes, buf.readonly) == ("B", 1, 100, False)
        assert shm.buf is buf  # one view per handle, as in the stdlib
        buf[99] = 255
        assert shm.read(1, offset=99) == b"\xff"
        with pytest.raises(IndexError):
            buf[100]


def test_close_makes_buf_fail_clearly(name):
    shm = SharedMemory(name, create=True, size=8)
    shm.close()
    assert shm.closed
    with pytest.raises(shmbox.ClosedError, match="is closed") as caught:
        shm.buf
    assert isinstance(caught.value, ValueError)
    with pytest.raises(shmbox.ClosedError):
        shm.read()
    shm.close()  # closing twice does nothing


def test_views_of_buf_outlive_close(name):
    # The stdlib raises BufferError from close() while views exist; here the
    # views keep the memory mapped, and stay usable.
    with SharedMemory(name, create=True, size=8) as other:
        shm = SharedMemory(name)
        buf = shm.buf
        part = buf[2:6]
        nested = memoryview(part)[1:]
        shm.close()
        part[0] = ord("x")
        nested[-1] = ord("y")
        assert other.read() == b"\0\0x\0\0y\0\0"
        buf.release()
        del part, nested


def test_close_releases_buf(name):
    with SharedMemory(name, create=True, size=8) as shm:
        buf = shm.buf
    with pytest.raises(ValueError, match="released"):
        buf[0]


def test_until_last_close_goes_with_the_last_close(name):
    a = SharedMemory(name, create=True, size=8)
    b = SharedMemory(name)
    a.close()
    assert SharedMemory(name).size == 8  # b still holds it
    b.close()
    with pytest.raises(FileNotFoundError):
        SharedMemory(name)


def test_unlink_persistent_removes_the_name(name):
    shm = SharedMemory(name, create=True, size=8, lifetime="persistent")
    shm.write(b"kept")
    shm.close()
    with SharedMemory(name) as again:
        assert again.read(4) == b"kept"  # persistent: it outlived its handles
        again.unlink()
        assert again.read(4) == b"kept"  # still usable by who has it open
    with pytest.raises(FileNotFoundError):
        SharedMemory(name)
    with pytest.raises(FileNotFoundError):
        shm.unlink()  # as the stdlib: a second unlink finds nothing


def test_stdlib_close_then_unlink_pattern_works(name):
    # The stdlib's documented sequence: every process closes, one unlinks.
    a = SharedMemory(name, create=True, size=8)
    b = SharedMemory(name)
    b.close()
    a.close()
    a.unlink()  # until-last-close: already gone, and unlink() is harmless
    with pytest.raises(FileNotFoundError):
        SharedMemory(name)


def test_create_existing_is_file_exists_error(name):
    with SharedMemory(name, create=True, size=8):
        with pytest.raises(FileExistsError, match="already exists") as caught:
            SharedMemory(name, create=True, size=8)
        assert caught.value.errno == 17 and caught.value.segment == name


def test_attach_missing_is_file_not_found_error(name):
    with pytest.raises(FileNotFoundError, match="no segment named") as caught:
        SharedMemory(name)
    assert isinstance(caught.value, shmbox.NotFoundError)
    assert caught.value.filename == name


@pytest.mark.parametrize("size", [0, -1])
def test_create_with_size_not_positive_is_value_error(name, size):
    with pytest.raises(ValueError, match="'size' must be a positive"):
        SharedMemory(name, create=True, size=size)
    assert not os.path.exists(f"/dev/shm/shmbox.{name}")


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x" * 201, "nul\0byte"])
def test_invalid_names_are_value_errors(bad):
    with pytest.raises(ValueError, match="invalid segment name"):
        SharedMemory(bad, create=True, size=8)


def test_pickling_attaches_by_name(name):
    with SharedMemory(name, create=True, size=32, timeout=1.5) as shm:
        shm.write(b"pickled")
        data = pickle.dumps(shm)
        assert len(data) < 200  # a name, not the bytes
        with pickle.loads(data) as copy:
            assert type(copy) is SharedMemory
            assert (copy.name, copy.size, copy.timeout) == (name, 32, 1.5)
            assert copy.read(7) == b"pickled"
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)  # the segment went with its last handle


def test_repr(name):
    with SharedMemory(name, create=True, size=8) as shm:
        assert repr(shm) == f"SharedMemory('{name}', size=8)"


def test_subclass_pickles_as_itself(name):
    class Mine(SharedMemory):
        pass

    globals()["Mine"] = Mine  # pickle finds classes by name
    Mine.__qualname__ = "Mine"
    try:
        with Mine(name, create=True, size=8) as shm:
            with pickle.loads(pickle.dumps(shm)) as copy:
                assert type(copy) is Mine
    finally:
        del globals()["Mine"]
