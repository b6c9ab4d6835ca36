"""All-or-nothing file writes.

Outputs are first written beside their targets under temporary names and moved into place
(``os.replace``, atomic on POSIX) only once every one of them is complete, so a failure or a
kill part-way leaves the previous files as they were and never a half-written one. What
a kill -9 leaves behind (an empty or partial temporary file) is removed by the next write of
the same target, once the process that made it is gone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from features.errors import DataError


def _temporary_beside(target: Path) -> Path:
    # os.open with mode 0o666 lets the umask set the permissions, as a plain open() would
    # (tempfile.mkstemp would leave the file readable by its owner only).
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (one that is not ours counts as running: it may be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Delete temporary files of ``target`` left by writers that died (a kill -9 part-way).

    Only files named as :func:`write_atomically` names them (``.<name>.<pid>.<hex>.tmp``) whose
    process no longer runs are removed: a writer still at work keeps its file. Returns those removed.
    """
    removed = []
    for tmp in Path(target).parent.glob(f".{Path(target).name}.*.tmp"):
        pid_text = tmp.name[len(Path(target).name) + 2:].split(".")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed


def write_atomically(targets: dict[Path, Callable[[Path], None]]) -> None:
    """Write every target through its writer (called with a temporary path), then move all.

    Parameters
    ----------
    targets
        Target path -> function that writes the complete content to the path it is given.
    """
    temps: dict[Path, Path] = {}
    try:
        for target, write in targets.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(target)
            temps[target] = tmp = _temporary_beside(target)
            try:
                write(tmp)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            except OSError as exc:
                if exc.filename:
                    raise
                # A writer's own error (a full disk inside pandas or pyarrow) names no file: name the target.
                raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from exc
        for target, tmp in temps.items():
            os.replace(tmp, target)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def write_bytes_atomically(files: dict[Path, bytes]) -> None:
    """:func:`write_atomically` for contents already in memory."""
    write_atomically({Path(p): (lambda tmp, data=data: tmp.write_bytes(data)) for p, data in files.items()})


def refuse_overwriting_inputs(outputs: dict[Path, str], inputs: dict[str, object]) -> None:
    """Refuse to write any of ``outputs`` (path -> what it is) over one of ``inputs`` (option -> path or paths).

    A command never writes over a file it reads: the message names both, and nothing is written.

    Raises
    ------
    DataError
        When an output is an input (the same file, by path or by inode).
    """
    for option, given in inputs.items():
        for source in ([] if given is None else given if isinstance(given, (list, tuple)) else [given]):
            for target, what in outputs.items():
                if _same_path(Path(target), Path(source)):
                    raise DataError(f"{target}: {what} would be written over the {option} input {source}; "
                                    "nothing was written. Choose another --out")


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b) or a.resolve() == b.resolve()
    except OSError:
        return a.absolute() == b.absolute()
