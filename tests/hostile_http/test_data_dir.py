"""Issue 13 item 12: the data dir of `fieldline up` is private. It holds password hashes
and e-mail addresses (fieldline.db), queued telemetry, the series and the logs; every
folder under it must be 0700 and every file 0600, including what an older version left
behind as 0644 in a 0755 folder."""

from __future__ import annotations

import os
import stat

import httpx

from tests.hostile_http.process import FieldlineUp


def modes(root) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = oct(stat.S_IMODE(os.lstat(path).st_mode))
    return found


def test_every_file_under_the_data_dir_of_fieldline_up_is_private(tmp_path):
    data_dir = tmp_path / "data"
    # What an older version left: a world-readable database, log folder and log.
    (data_dir / "logs").mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / "logs", 0o755)
    (data_dir / "logs" / "fieldline.log.1").write_text("old log\n")
    os.chmod(data_dir / "logs" / "fieldline.log.1", 0o644)
    up = FieldlineUp(data_dir)
    try:
        # Some work, so the databases, their WAL files and the log all exist.
        with httpx.Client(base_url=up.base_url, timeout=10) as http:
            http.post("/api/v1/auth/token", data={"username": "nobody", "password": "x" * 12})
            assert http.get("/readyz").status_code == 200
    finally:
        up.stop()
    found = modes(data_dir)
    for expected in ("fieldline.db", "queue.db", "timeseries.db", "logs/fieldline.log"):
        assert expected in found, f"{expected} not in the data dir: {sorted(found)}"
    wrong = {
        name: mode
        for name, mode in found.items()
        if mode != ("0o700" if (data_dir / name).is_dir() else "0o600")
    }
    assert not wrong, f"expected folders 0o700 and files 0o600, got {wrong}"
