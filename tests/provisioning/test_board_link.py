"""What `BoardLink` builds on exec, over an exec-level fake board (MicroPython in a
subprocess, see micropython_link.py): a write that fails leaves no .tmp and the old file;
reset interrupts first. The same behaviours over a pty are in hil_tests/test_board_link.py."""

from __future__ import annotations

import hashlib

import pytest

from fieldline_provision.board_link import WRITE_CHUNK
from fieldline_provision.errors import BoardCommandFailed, BoardFlashFull
from tests.provisioning.micropython_link import MicroPythonProcessLink

OLD = b"old = 1\n"
NEW = bytes(range(256)) * 20  # 5 chunks


@pytest.fixture
def link(tmp_path):
    opened = MicroPythonProcessLink(tmp_path / "flash")
    yield opened
    opened.close()


def files_on(link) -> list[str]:
    return sorted(link.list_files(""))


def test_files_round_trip_through_exec(link):
    link.put_file("lib/x/blob.bin", NEW)
    assert link.read_file("lib/x/blob.bin") == NEW
    assert link.file_hashes(["lib/x/blob.bin", "nope"]) == {
        "lib/x/blob.bin": hashlib.sha256(NEW).hexdigest(),
        "nope": None,
    }
    assert files_on(link) == ["lib/x/blob.bin"]
    assert (link.flash_dir / "lib/x/blob.bin").read_bytes() == NEW


def test_ctrl_c_between_chunks_leaves_the_old_file_and_no_tmp(link):
    link.put_file("main.py", OLD)

    def ctrl_c(sent, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        link.put_file("main.py", NEW, ctrl_c)
    assert files_on(link) == ["main.py"], "expected no main.py.tmp"
    assert link.read_file("main.py") == OLD


def test_ctrl_c_while_the_board_writes_leaves_the_old_file_and_no_tmp(link):
    link.put_file("main.py", OLD)
    writes = []

    def second_chunk(code):
        writes.extend(["write"] if "_fl_f.write(" in code else [])
        return len(writes) == 2 and "_fl_f.write(" in code

    link.ctrl_c_while_running = second_chunk
    with pytest.raises(KeyboardInterrupt):
        link.put_file("main.py", NEW)
    link.ctrl_c_while_running = lambda code: False
    assert files_on(link) == ["main.py"], "expected no main.py.tmp"
    assert link.read_file("main.py") == OLD


def test_a_board_error_on_rename_leaves_no_tmp(link):
    # A folder that is not empty where the file goes: rename and remove both fail.
    link.make_folders(["config.json"])
    link.put_file("config.json/keep", b"x")
    with pytest.raises(BoardCommandFailed, match="OSError"):
        link.put_file("config.json", NEW)
    assert files_on(link) == ["config.json/keep"], "expected no config.json.tmp"


class FlashFullAfterOneChunk(MicroPythonProcessLink):
    """Answers the second chunk's write as a board with a full flash does."""

    writes = 0

    def exec_raw(self, code):
        if "_fl_f.write(" in code:
            self.writes += 1
            if self.writes == 2:
                return b"", b"Traceback (most recent call last):\r\nOSError: [Errno 28] ENOSPC\r\n"
        return super().exec_raw(code)


def test_a_full_flash_names_the_file_and_leaves_no_tmp(tmp_path):
    link = FlashFullAfterOneChunk(tmp_path / "flash")
    try:
        with pytest.raises(BoardFlashFull, match="lib/fieldline/big.py"):
            link.put_file("lib/fieldline/big.py", b"#" * (3 * WRITE_CHUNK))
        assert files_on(link) == [], "expected no lib/fieldline/big.py.tmp"
    finally:
        link.close()


def test_reset_interrupts_first_also_a_running_app(link):
    link.reset()
    assert link.app_running and link.boots == 1
    link.reset()  # the app now runs: Ctrl-D alone would not reach it
    assert link.boots == 2, f"expected a second boot, got {link.boots} (calls {link.calls})"
    assert [c for c in link.calls if c != "exec"] == ["enter_raw_repl", "soft_reset"] * 2
