"""shmbox's exceptions.

Where Python has a type for the condition, the exception is also an
instance of it: ``except FileNotFoundError`` catches a missing segment, as
it does for ``multiprocessing.shared_memory``. Everything shmbox raises is
an instance of :class:`Error`, whose ``segment`` attribute names the segment
concerned (or is ``None``).
"""

import errno as _errno

__all__ = [
    "Error",
    "NotFoundError",
    "ExistsError",
    "AccessError",
    "WaitTimeoutError",
    "InvalidArgumentError",
    "SizeMismatchError",
    "NoSpaceError",
    "CorruptError",
    "IncompatibleVersionError",
    "NotInitializedError",
    "InconsistentError",
    "TruncatedError",
    "BusyError",
    "ForkedError",
    "UnsupportedError",
    "SystemCallError",
    "LockError",
    "ClosedError",
]


class Error(Exception):
    """Base class of every exception shmbox raises."""

    #: The name of the segment the error is about, or None.
    segment = None

    def __init__(self, message, segment=None):
        super().__init__(message)
        self.segment = segment

    def __reduce__(self):
        # Picklable, so that errors cross multiprocessing's pipes intact.
        return (type(self), self._reduce_args(), self.__dict__)

    def _reduce_args(self):
        return (str(self), self.segment)


class _OSErrorMixin(Error):
    # OSError subclasses take (errno, strerror[, filename]); keep shmbox's
    # message as the whole str() while errno says what kind of error it is.
    _errno = None

    def __init__(self, message, segment=None):
        OSError.__init__(self, self._errno, message)
        self.segment = segment
        self.filename = segment

    def __str__(self):
        return self.strerror


class NotFoundError(_OSErrorMixin, FileNotFoundError):
    """No segment has this name."""

    _errno = _errno.ENOENT


class ExistsError(_OSErrorMixin, FileExistsError):
    """``create=True`` found a segment of this name."""

    _errno = _errno.EEXIST


class AccessError(_OSErrorMixin, PermissionError):
    """The system refused access, or the segment is not trusted: it belongs
    to another user, or any user may write to it."""

    _errno = _errno.EACCES


class NoSpaceError(_OSErrorMixin, OSError):
    """Not enough shared memory for a segment of this size."""

    _errno = _errno.ENOSPC


class SystemCallError(_OSErrorMixin, OSError):
    """Any other error from the operating system."""

    _errno = _errno.EIO


class WaitTimeoutError(Error, TimeoutError):
    """A wait (for the lock, a change, or a write in progress) ran out of time."""


class InvalidArgumentError(Error, ValueError):
    """A name, size, offset or mode that cannot be used."""


class SizeMismatchError(Error, ValueError):
    """The segment exists with another size than the one asked for."""


class CorruptError(Error):
    """The file under the name is not a valid shmbox segment."""


class IncompatibleVersionError(Error):
    """The segment was made by another format version of shmbox."""


class NotInitializedError(Error):
    """The segment's creator never finished initialising it."""


class InconsistentError(Error):
    """A writer died in the middle of a write, so the data may be torn.

    ``generation`` is the last generation committed before it. Writing, or
    locking and calling ``mark_consistent()``, repairs it.
    """

    generation = None

    def __init__(self, message, segment=None, generation=None):
        super().__init__(message, segment)
        self.generation = generation

    def _reduce_args(self):
        return (str(self), self.segment, self.generation)


class TruncatedError(Error):
    """Another process cut the segment's file short while it was open."""


class BusyError(Error):
    """The operation cannot proceed while other processes use the segment."""


class ForkedError(Error):
    """A handle inherited through fork() cannot be used in the child."""


class UnsupportedError(Error):
    """This platform or configuration lacks something the operation needs."""


class LockError(Error, RuntimeError):
    """The lock was used in a way that cannot work: released twice, taken
    again by the thread that holds it, or used from another thread."""


class ClosedError(Error, ValueError):
    """The SharedMemory was closed."""
