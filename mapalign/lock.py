"""Who may write a folder now, and what a process that died left behind.

A run directory is locked while a command writes it, as git locks its index: a lock file
``.mapalign-lock`` created atomically (``O_CREAT|O_EXCL``) that holds the owner's process id,
host, start time and command. A lock whose process no longer runs (same host, and its process
id gone or now another program's) is taken over, saying so. ``fit`` holds the lock for the whole
fit and is refused at once when another process holds it; the short writes of later commands
(an appended evaluation, the cache's index) wait for it briefly.

Temporary files and folders carry their process id and host in their names
(:func:`temp_tag`); :func:`sweep` removes those of processes that no longer exist, and never
those of a live process or another host.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import re
import shutil
import socket
import threading
import time
import warnings
import zlib
from typing import Optional

LOCK = ".mapalign-lock"
_BREAK = LOCK + ".break"  # held while a stale lock is removed, so that only one process does
_EMPTY_GRACE_S = 5.0  # a lock file still empty this long after creation: its creator died


_LONG = ("fit", "fit-multi")  # holders not worth waiting for: they hold a lock for minutes


class MapalignWarning(UserWarning):
    """What mapalign warns of on its own (a lock taken over, a run it cannot write)."""


class RunLockedError(OSError):
    """Another live process holds the folder's lock."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder

    def __str__(self):
        return self.args[0]


def host() -> str:
    return socket.gethostname()


def _host_tag(name: Optional[str] = None) -> str:
    return f"{zlib.crc32((name or host()).encode()):08x}"


def temp_tag() -> str:
    """What a temporary name carries so that a later process can tell whether its writer still
    runs: ``PID-HOST`` (the host as 8 hex digits)."""
    return f"{os.getpid()}-{_host_tag()}"


def _start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux), telling a reused process id
    from the process that wrote a lock; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _alive(holder: dict) -> bool:
    """Whether the process a lock names may still run: always True for another host's."""
    if holder.get("host") != host():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    started = holder.get("start")
    now = _start_time(pid)
    return not (started and now and started != now)


def _describe(holder: dict) -> str:
    what = holder.get("command") or "mapalign"
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({what}{since})"


# ---------------------------------------------------------------- the lock
_held = {}  # folder -> [depth, command]: locks this process holds (re-entered, not re-taken)
_held_guard = threading.Lock()


def _read(path) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _holder(raw: bytes) -> Optional[dict]:
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _break(path: str, seen: bytes, folder: str, holder: dict) -> None:
    """Remove the stale lock ``path`` if it still holds ``seen``; one process at a time (the
    one that creates the break file), so that a lock just taken by another is never removed."""
    guard = os.path.join(os.path.dirname(path), _BREAK)
    try:
        fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):  # left by a process killed while breaking
            if time.time() - os.stat(guard).st_mtime > 10:
                os.unlink(guard)
        return
    try:
        if _read(path) == seen:
            os.unlink(path)
            warnings.warn(f"{folder}: taking over the lock of {_describe(holder)}, which no "
                          "longer runs", MapalignWarning, stacklevel=4)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(guard)


def _try_lock(folder: str, command: str):
    """Create the lock file; returns None on success, else the live holder (a stale lock is
    removed and the caller tries again: ``{}``)."""
    path = os.path.join(folder, LOCK)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raw = _read(path)
        if raw is None:
            return {}  # released meanwhile
        holder = _holder(raw)
        if holder is None:  # being written now, or its creator died right after creating it
            with contextlib.suppress(OSError):
                if time.time() - os.stat(path).st_mtime > _EMPTY_GRACE_S:
                    _break(path, raw, folder, {"pid": "?", "host": "?"})
                    return {}
            return {"pid": "?", "host": host(), "command": "starting"}
        if not _alive(holder):
            _break(path, raw, folder, holder)
            return {}
        return holder
    me = {"pid": os.getpid(), "host": host(), "start": _start_time(os.getpid()),
          "command": command,
          "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    data = (json.dumps(me) + "\n").encode("utf-8")
    try:
        while data:
            data = data[os.write(fd, data):]
    except BaseException as e:  # a full disk fails here, after the file was created: an
        with contextlib.suppress(OSError):  # empty lock left would hold off later commands
            os.unlink(path)
        if isinstance(e, OSError):
            from .export import WriteError  # FILE: no space left on device

            raise WriteError(e.errno, e.strerror, path) from None
        raise
    finally:
        os.close(fd)
    return None


def acquire(folder, command: str, wait: float = 0.0, give_up_on=_LONG) -> None:
    """Take ``folder``'s lock for ``command`` (re-entered when this process holds it). A live
    holder is waited for up to ``wait`` seconds, unless its command is in ``give_up_on`` (a fit
    that holds it for minutes): then, or after the wait, :class:`RunLockedError`. OS errors
    (a read-only folder, a full disk) are raised as they are."""
    folder = os.path.abspath(os.fspath(folder))
    with _held_guard:
        if folder in _held:
            _held[folder][0] += 1
            return
    deadline = time.monotonic() + wait
    while True:
        holder = _try_lock(folder, command)
        if holder is None:
            break
        if holder == {}:
            continue
        if holder.get("command") == "starting":  # its content comes in a moment
            time.sleep(0.01)
            continue
        if time.monotonic() >= deadline or holder.get("command") in give_up_on:
            raise RunLockedError(f"{folder} is being written by another process: "
                                 f"{_describe(holder)}", holder)
        time.sleep(0.02 + random.random() * 0.03)
    with _held_guard:
        _held[folder] = [1, command]
    sweep_once(folder)
    sweep_once(os.path.join(folder, "cache"))


def release(folder) -> None:
    folder = os.path.abspath(os.fspath(folder))
    with _held_guard:
        entry = _held.get(folder)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0]:
            return
        del _held[folder]
    path = os.path.join(folder, LOCK)
    holder = _holder(_read(path) or b"")
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == host():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def locked(folder, command: str, wait: float = 0.0, give_up_on=_LONG):
    """``with locked(run_dir, "evaluate", wait=30):`` (see :func:`acquire`)."""
    acquire(folder, command, wait, give_up_on)
    try:
        yield
    finally:
        release(folder)


def holds(folder) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return os.path.abspath(os.fspath(folder)) in _held


# ---------------------------------------------------------------- leftovers
# a temporary file ``.NAME.~PID-HOST-RANDOM.tmp`` (see mapalign.export.atomic_file) or folder
# ``.mapalign-partial-PID-HOST-RANDOM`` (mapalign.export.atomic_set)
_TEMP = re.compile(r"^\..*\.~(\d+)-([0-9a-f]{8})-[^/]*\.tmp$|^\.mapalign-partial-(\d+)-"
                   r"([0-9a-f]{8})-[^/]*$")


_swept = set()


def sweep_once(folder) -> None:
    """:func:`sweep` the first time this process writes ``folder``."""
    folder = os.path.abspath(os.fspath(folder))
    if folder not in _swept:
        _swept.add(folder)
        sweep(folder)


def sweep(folder) -> list:
    """Remove the temporary files and folders in ``folder`` whose writer (by the process id and
    host in their names) no longer runs on this host. Returns the names removed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    me = _host_tag()
    removed = []
    for name in names:
        m = _TEMP.match(name)
        if not m:
            continue
        pid, tag = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if tag != me or _pid_alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(name)
        except FileNotFoundError:
            pass
        except OSError:  # a read-only folder: left for a command that can write there
            pass
    return removed
