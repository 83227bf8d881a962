"""Output files: written whole or not at all, never over an input, with the mode a user expects.

Every file a ``host`` command writes goes through this module (docs/decisions.md#7):

* the data goes to a temporary file in the target's folder, is flushed and fsynced, and only
  then renamed over the target, so an interrupted or failed command leaves the old file (or
  none), never half a file;
* the temporary file is created with mode ``0o666`` and the process umask applied by the
  kernel, so the result is ``-rw-r--r--`` under the usual umask 022 (``tempfile.mkstemp``'s
  ``0o600`` would keep colleagues and CI artifact steps from reading it);
* several outputs of one command (an image and its manifest) are all written to temporary
  files first and renamed only when every one of them is complete;
* filesystem errors (ENAMETOOLONG, EISDIR, EACCES, ENOSPC, EROFS, a missing folder ...) become
  one-line :class:`~host.errors.FlipLabError` messages naming the path.

:func:`check_outputs` refuses an output path that is one of the command's inputs or another of
its outputs, before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path

from host.errors import FlipLabError

PathLike = str | os.PathLike[str]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _error(path: Path, exc: OSError) -> FlipLabError:
    return FlipLabError(f"cannot write {path}: {_describe(exc)}")


def check_target(path: PathLike) -> None:
    """Refuse, before anything is written (or read from a board), a target that cannot become
    a regular file: a directory, a missing or unwritable folder."""
    path = Path(path)
    folder = path.parent
    try:
        if not folder.exists():
            raise FlipLabError(f"cannot write {path}: folder {folder} does not exist")
        if not folder.is_dir():
            raise FlipLabError(f"cannot write {path}: {folder} is not a folder")
        if path.is_dir():
            raise FlipLabError(f"cannot write {path}: it is a directory")
    except OSError as exc:  # e.g. ENAMETOOLONG, which pathlib does not swallow
        raise _error(path, exc) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FlipLabError(f"cannot write {path}: permission denied in folder {folder}")


def _create_temp(path: Path) -> tuple[int, Path]:
    """An empty, exclusive temporary file beside ``path``, mode 0o666 & ~umask (by the kernel).

    The name is ``.<name>.<random>.tmp``, cut so that it stays within the folder's name limit
    even when the target's own name is near it.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name[:200]}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise _error(path, exc) from None
    raise FlipLabError(f"cannot write {path}: no free temporary name in {path.parent}")


def _fsync_file(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders that cannot be opened or synced (some filesystems) are
    left as they are, the rename itself is already atomic."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Staged:
    """A temporary file beside ``target``, removed unless committed."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, self.tmp = _create_temp(target)
        os.close(fd)

    def write(self, data: bytes) -> None:
        try:
            with open(self.tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise _error(self.target, exc) from None

    def sync(self) -> None:
        try:
            _fsync_file(self.tmp)
        except OSError as exc:
            raise _error(self.target, exc) from None

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise _error(self.target, exc) from None
        _fsync_folder(self.target.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def write_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path``: a temporary file beside it, fsync, then one rename.

    Raises:
        FlipLabError: ``path`` is a directory, its folder is missing, or the filesystem refuses
            (name too long, permission, disk full, read-only ...); the target is untouched.
    """
    write_all_atomic({path: data})


def write_all_atomic(files: Mapping[PathLike, bytes]) -> None:
    """Write several files as one step: all go to temporary files first, and the renames
    happen only once every one of them is complete (nothing is renamed if one fails).

    Raises:
        FlipLabError: two entries name the same file, or any write fails as in
            :func:`write_atomic`; then no target has been touched.
    """
    targets = {Path(p): bytes(data) for p, data in files.items()}
    check_outputs(targets)
    for path in targets:
        check_target(path)
    staged: list[_Staged] = []
    try:
        for path, data in targets.items():
            staged.append(_Staged(path))
            staged[-1].write(data)
        for s in staged:
            s.commit()
    finally:
        for s in staged:
            s.discard()  # a no-op for the committed ones: their temporary name is gone


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """For writers that want a file name (``fig.savefig(tmp)``): yields a temporary path beside
    ``path``; when the block ends without an exception the file is fsynced and renamed over
    ``path``, otherwise it is removed.

    Raises:
        FlipLabError: as :func:`write_atomic`.
    """
    target = Path(path)
    check_target(target)
    staged = _Staged(target)
    try:
        try:
            yield staged.tmp
        except OSError as exc:
            raise _error(target, exc) from None
        staged.sync()
        staged.commit()
    finally:
        staged.discard()


def write_via(path: PathLike, writer: Callable[[Path], object]) -> None:
    """``writer(tmp)`` writes the file at a temporary path; it is then renamed over ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False  # one of them does not exist (yet): different files


def check_outputs(outputs: Iterable[PathLike], inputs: Iterable[PathLike | None] = ()) -> None:
    """Refuse outputs that are one of the inputs or that collide with each other.

    Paths are compared resolved (symlinks, ``..``) and, when both exist, with
    ``os.path.samefile``. Nothing is written; call it before any output is produced.

    Raises:
        FlipLabError: naming the output and the input (or the other output) it equals.
    """
    outs = [Path(p) for p in outputs]
    ins = [Path(p) for p in inputs if p is not None]
    for out in outs:
        for given in ins:
            if _same_file(out, given):
                raise FlipLabError(f"output {out} is the input {given}; choose another output "
                                   f"name (inputs are never overwritten)")
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            if _same_file(a, b):
                raise FlipLabError(f"outputs {a} and {b} are the same file; choose another "
                                   f"output name")


class ProbeLog:
    """A search's probes file, resumable: a header line (the search's settings) then one
    JSON line per probe, each appended, flushed and fsynced as it comes. A rerun with the
    same header reads the probes back (a torn last line is dropped: that probe runs again);
    another header is refused.

    Args:
        path: the file (created with the header when absent).
        header: the search's settings (JSON-serialisable).
        key: a row -> the probe it answers (``rows`` maps it to the row).
    """

    def __init__(self, path: Path, header: dict, key: Callable[[dict], Hashable]) -> None:
        self.path, self.header, self.key = path, header, key
        self.rows: dict[Hashable, dict] = {}
        if path.exists():
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise FlipLabError(f"cannot read the probes file {path}: {exc}") from None
            lines = text.splitlines()
            try:
                first = json.loads(lines[0]) if lines else None
            except json.JSONDecodeError:
                first = None
            if first != header:
                raise FlipLabError(f"{path} holds another search (other model or settings); "
                                   f"choose another --results file")
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                    self.rows[key(row)] = row
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn last line: that probe is evaluated again
            if not text.endswith("\n"):
                self._append(None)  # end the torn line: the next row gets its own
        else:
            self._append(header)

    def _append(self, row: dict | None) -> None:
        try:
            with open(self.path, "a") as f:
                f.write("\n" if row is None else json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise FlipLabError(f"cannot write the probes file {self.path}: "
                               f"{_describe(exc)}") from None

    def record(self, row: dict) -> None:
        self.rows[self.key(row)] = row
        self._append(row)
