"""Named shared memory between processes, shaped like
:mod:`multiprocessing.shared_memory`, with what it lacks: a lock between
unrelated processes that survives a crashed holder, torn-free reads, change
notification, and a lifetime that neither leaks after a crash nor removes a
segment that others still use.

>>> import shmbox
>>> with shmbox.SharedMemory(create=True, size=16) as shm:
...     with shm.lock():
...         shm.buf[:5] = b"hello"
...     shm.read(5)
b'hello'

Segments are shared with other programs that use shmbox: the ``shmbox``
command, Rust programs, C and FoxPro through ``libshmbox``.
"""

from shmbox._errors import (
    AccessError,
    BusyError,
    ClosedError,
    CorruptError,
    Error,
    ExistsError,
    ForkedError,
    IncompatibleVersionError,
    InconsistentError,
    InvalidArgumentError,
    LockError,
    NoSpaceError,
    NotFoundError,
    NotInitializedError,
    SizeMismatchError,
    SystemCallError,
    TruncatedError,
    UnsupportedError,
    WaitTimeoutError,
)
from shmbox._shmbox import (
    LockGuard,
    OwnerDied,
    SegmentInfo,
    SharedMemory,
    __version__,
    info,
    install_sigbus_handler,
    list,
    reclaim,
    remove,
)

__all__ = [
    "SharedMemory",
    "LockGuard",
    "OwnerDied",
    "SegmentInfo",
    "list",
    "info",
    "remove",
    "reclaim",
    "install_sigbus_handler",
    "Error",
    "AccessError",
    "BusyError",
    "ClosedError",
    "CorruptError",
    "ExistsError",
    "ForkedError",
    "IncompatibleVersionError",
    "InconsistentError",
    "InvalidArgumentError",
    "LockError",
    "NoSpaceError",
    "NotFoundError",
    "NotInitializedError",
    "SizeMismatchError",
    "SystemCallError",
    "TruncatedError",
    "UnsupportedError",
    "WaitTimeoutError",
    "__version__",
]
