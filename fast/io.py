"""Atomic file output: write to a temporary name beside the target, rename when complete,
so that a killed job never leaves a file (or directory) that looks finished.

Temporaries are named ``.<target name>.<host>.<pid>-<random>.tmp``. A run killed by SIGKILL (or a
power cut) cannot remove its own; the next run of the same job (same target) removes every
temporary of that target whose process is gone (same host, pid not alive), is older than a day
(another host) or has the pre-pid name ``.<target name>.<random>.tmp``. Outputs get the modes the
umask allows, as files and directories made with ``open``/``mkdir`` would (``tempfile`` alone
would leave them 0600/0700).

OS errors while writing (no space left, read-only file system, permission denied, a path
component that is a file) become one line naming the path and what to do: :func:`os_error_message`
(the CLI applies it to any OSError that reaches it) and :func:`ensure_dir` (checked before a job
starts writing).
Writers that do their own I/O (safetensors, ``torch.save``) report a full disk in their own words
(a SafetensorError, a RuntimeError): :func:`write_failure` recognises those too, so that every
writer inside :func:`atomic_path` / :func:`atomic_dir` ends in one line naming the target.

Files other jobs wrote (weights, manifests) are read through :func:`read_weights` and
:func:`read_table`: a truncated or empty file becomes one line naming it and the step to re-run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from fast.errors import FastError

# what to do about an OSError, by errno (writing side)
_ADVICE = {
    errno.ENOSPC: "free space on that file system or point the output elsewhere, then rerun",
    errno.EDQUOT: "the disk quota is exceeded: free space or point the output elsewhere, then rerun",
    errno.EROFS: "the file system is read-only: choose a writable output directory",
    errno.EACCES: "permission denied: choose an output directory you can write to (or fix its permissions)",
    errno.EPERM: "operation not permitted: choose an output directory you can write to",
    errno.ENOTDIR: "a component of this path is a regular file, not a directory: remove it or choose "
                   "another output path",
    errno.EEXIST: "a file of that name is in the way: remove it or choose another output path",
    errno.EISDIR: "a directory of that name is in the way: remove it or choose another output path",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter output path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and rerun",
    errno.EIO: "input/output error: check the disk",
    errno.ENOENT: "check the path (a file or directory it needs is missing)",
}
STALE_OTHER_HOST_SECONDS = 24 * 3600


_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def os_error_reason(exc: OSError) -> str:
    """The system's reason and what to do, without the path."""
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno, "")
    return f"{reason} [errno {exc.errno}]; {advice}" if advice else f"{reason} [errno {exc.errno}]"


def os_error_message(exc: OSError, action: str | None = None) -> str:
    """One line for an OSError: the path, the system's reason and what to do."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        src, dst, why = exc.args[0][0]
        return f"cannot copy {src} to {dst}: {why}; check free space and permissions of the output"
    if action is None:
        action = "cannot write" if exc.errno in _WRITE_ERRNOS else "cannot access"
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    return f"{action} {where}: {os_error_reason(exc)}" if where else f"{action}: {os_error_reason(exc)}"


def is_write_error(exc: BaseException) -> bool:
    """True for OSErrors that say the destination cannot take the data (not that the input is bad)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                                      errno.EPERM, errno.EIO)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_dir(path: str | Path, what: str = "output directory") -> Path:
    """``mkdir -p path`` with a one-line FastError naming the component in the way, if any."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise FastError(f"{what} {path}: {parent} is a regular file, not a directory; remove it "
                                f"or choose another output path")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FastError(f"{what} {path}: " + os_error_message(exc, "cannot create")) from None
    return path


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by killed runs (see the module docstring)."""
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    name = re.escape(target.name)
    new = re.compile(rf"^\.{name}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
    legacy = re.compile(rf"^\.{name}\.[a-z0-9_]{{8}}\.tmp$")
    host, now, removed = _host(), time.time(), []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    for p in entries:
        m = new.match(p.name)
        if m:
            if m["host"] == host:
                stale = not _alive(int(m["pid"]))
            else:
                try:
                    stale = now - p.lstat().st_mtime > STALE_OTHER_HOST_SECONDS
                except OSError:
                    stale = False
        else:
            stale = bool(legacy.match(p.name))
        if not stale:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    return removed


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.{_host()}.{os.getpid()}-"


# how libraries with their own writers (safetensors, torch.save) word a full disk
_FULL_DISK_SIGNS = ("No space left on device", "os error 28", "StorageFull", "Disk quota exceeded")
# torch.save says only "unexpected pos ..." or "file write failed": below this much free space
# such an error is taken for a full disk
FULL_DISK_BYTES = 64 * 2**20


def _disk_nearly_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_DISK_BYTES


def write_failure(target: Path, exc: BaseException) -> FastError | None:
    """The one-line error for ``exc`` raised while writing ``target``, or None when it is no fault
    of the disk (then it is a bug, whose traceback is needed)."""
    if isinstance(exc, FastError) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, OSError):
        if exc.errno in _WRITE_ERRNOS:
            return FastError(f"cannot write {target}: {os_error_reason(exc)}")
        return None
    if any(sign in str(exc) for sign in _FULL_DISK_SIGNS) or _disk_nearly_full(target.parent):
        said = " ".join(str(exc).split())[:200]
        return FastError(f"cannot write {target}: No space left on device [errno {errno.ENOSPC}] "
                         f"({type(exc).__name__}: {said}); {_ADVICE[errno.ENOSPC]}")
    return None


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename onto ``target`` on success."""
    target = Path(target)
    ensure_dir(target.parent)
    remove_stale_temporaries(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FastError(f"cannot write {target} (in {target.parent}): {os_error_reason(exc)}") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
            # after the writer: some (safetensors) replace the file and make it 0600 whatever the umask
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except Exception as exc:
            failure = write_failure(target, exc)
            if failure is None:
                raise
            raise failure from None
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; it replaces ``target`` on success."""
    target = Path(target)
    ensure_dir(target.parent)
    remove_stale_temporaries(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise FastError(f"cannot write {target} (in {target.parent}): {os_error_reason(exc)}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
        except Exception as exc:
            failure = write_failure(target, exc)
            if failure is None:
                raise
            raise failure from None
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Save a uint8 (H, W), (H, W, 1) or (H, W, 3) array as PNG, deterministically."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"write_png({path}): expected uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    Image.fromarray(arr).save(path, format="PNG", optimize=False)


def read_png(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# ---------------------------------------------------------------------------------------------
# reading what another step wrote: a damaged file names itself and the step that writes it


def read_weights(path: str | Path, rerun: str) -> dict:
    """The tensors of a ``.safetensors`` file; a truncated, empty or otherwise unreadable one is a
    FastError naming the file and ``rerun`` (the command that writes it)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError (truncated, empty), OSError: the file, not the code
        said = " ".join(str(exc).split())[:200]
        raise FastError(f"{path}: cannot read these weights ({said}); the file is truncated or damaged: "
                        f"re-run {rerun}") from None


def read_table(path: str | Path, rerun: str):
    """A CSV written by another step, every value a string; an empty or unparsable file is a
    FastError naming the file and ``rerun``."""
    import pandas as pd

    path = Path(path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        said = " ".join(str(exc).split())[:200]
        raise FastError(f"{path}: not a readable table ({said}); re-run {rerun}") from None
