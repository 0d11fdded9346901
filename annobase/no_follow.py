"""Opening a file without following a symbolic link anywhere on its path.

What keeps the local store inside its root: a client who can write into `uploads/` could plant a
link to `/etc`, to another client's delivery or to itself, and a plain `open()` would follow it.
On Linux (5.6+) the kernel refuses in the same call that opens (`openat2` with
`RESOLVE_NO_SYMLINKS`, which Python's `os` does not expose), so a link swapped in between a check
and the open is refused too. Elsewhere, or where a sandbox refuses the call, every directory on the
path is checked with `lstat` first and the last component is opened with `O_NOFOLLOW`.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
import sys

SYS_OPENAT2 = 437  # one number on every Linux architecture (the unified syscall table)
RESOLVE_NO_SYMLINKS = 0x04
AT_FDCWD = -100


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _openat2():
    """libc's `syscall`, typed for openat2 (typed once: converting untyped arguments was most of a
    call's cost), or None off Linux."""
    if sys.platform != "linux":
        return None
    call = ctypes.CDLL(None, use_errno=True).syscall
    call.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    call.restype = ctypes.c_int
    return call


_syscall = _openat2()
_has_openat2 = _syscall is not None
_HOW_SIZE = ctypes.sizeof(_OpenHow)


@functools.cache
def _how(flags: int, mode: int) -> tuple[_OpenHow, int]:
    """The `open_how` for these flags, kept with its address (a handful of flag sets are ever used)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, RESOLVE_NO_SYMLINKS)
    return how, ctypes.addressof(how)


def open_no_follow(path: str, flags: int, mode: int = 0o666) -> int:
    """`os.open(path, flags, mode)` for an absolute `path`, raising OSError(ELOOP) when any component
    of it is a symbolic link (dangling, looping or not)."""
    global _has_openat2
    if _has_openat2:
        fd = _syscall(SYS_OPENAT2, AT_FDCWD, os.fsencode(path), _how(flags, mode)[1], _HOW_SIZE)
        if fd >= 0:
            return fd
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter refusing the call
            raise OSError(code, os.strerror(code), path)
        _has_openat2 = code != errno.ENOSYS
    _refuse_linked_directories(path)
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def _refuse_linked_directories(path: str) -> None:
    directory = os.path.dirname(path)
    while directory != os.path.dirname(directory):
        try:
            if stat.S_ISLNK(os.lstat(directory).st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        except FileNotFoundError:
            pass  # the open that follows says what is missing
        directory = os.path.dirname(directory)
