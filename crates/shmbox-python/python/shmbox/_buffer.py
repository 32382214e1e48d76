"""The memoryview behind ``SharedMemory.buf``."""

import ctypes


def view(address, size, keeper):
    """A writable memoryview (format ``'B'``) of ``size`` bytes at ``address``.

    ``keeper`` owns the mapping. The ctypes array under the view holds it, and
    so does every slice of the view, or view of a slice: the memory stays
    mapped while any of them lives, even after ``SharedMemory.close()``.
    """
    array = (ctypes.c_ubyte * size).from_address(address)
    array._shmbox_keeper = keeper
    return memoryview(array).cast("B")
