"""The data dir is private: 0700, its files 0600, like secrets/ always was.

It holds password hashes and e-mail addresses (fieldline.db), queued telemetry
(queue.db), the time series and the logs; they were 0644 in a 0755 folder, readable by
every account on the machine. `make_private` is called at the start of the processes
that own the data dir (`fieldline up`, `fieldline demo`): it sets the umask so whatever
they create from then on (SQLite files and their -wal/-shm, logs, mail) is private, and
fixes what an older version left behind.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private(data_dir: Path) -> int:
    """umask 077 for this process, and 0700/0600 under data_dir; how many modes changed.

    Leaves alone a data dir owned by another account (a shared folder an operator set
    up on purpose) and anything that is not a plain file or folder (symlinks, sockets).
    """
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if data_dir.stat().st_uid != os.getuid():
        return 0
    changed = _chmod(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            changed += _chmod(Path(root, name), DIR_MODE)
        for name in files:
            changed += _chmod(Path(root, name), FILE_MODE)
    if changed:
        log.info("made %d entries under %s private (folders 0700, files 0600)", changed, data_dir)
    return changed


def _chmod(path: Path, mode: int) -> int:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return 0
    kind = stat.S_IFMT(info.st_mode)
    if kind not in (stat.S_IFREG, stat.S_IFDIR) or info.st_uid != os.getuid():
        return 0
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return 0  # as private or more already
    path.chmod(stat.S_IMODE(info.st_mode) & mode)
    return 1
