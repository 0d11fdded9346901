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
import os
import stat
import sys

SYS_OPENAT2 = 437  # one number on every Linux architecture (the unified syscall table)
RESOLVE_NO_SYMLINKS = 0x04
AT_FDCWD = -100


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_has_openat2 = _libc is not None


def open_no_follow(path: str, flags: int, mode: int = 0o666) -> int:
    """`os.open(path, flags, mode)` for an absolute `path`, raising OSError(ELOOP) when any component
    of it is a symbolic link (dangling, looping or not)."""
    global _has_openat2
    if _has_openat2:
        how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, RESOLVE_NO_SYMLINKS)
        fd = _libc.syscall(
            ctypes.c_long(SYS_OPENAT2),
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
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
