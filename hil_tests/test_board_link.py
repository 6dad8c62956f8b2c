"""The board link against the board (or the rig): code, files, hashes, Ctrl-C, reset."""

from __future__ import annotations

import hashlib
import os
import signal
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_provision.errors import BoardCommandFailed
from fieldline_provision.serial_board_link import SerialBoardLink
from hil_tests.conftest import HIL_PORT, LOOPING_MAIN, TARGET, wait_for_console
from hil_tests.rig import Rig

# Test files live under this folder on the board, so a real board keeps its app.
DIR = "fl_hil"


@pytest.fixture
def link(board):
    opened = SerialBoardLink.open(board.port)
    yield opened
    opened.close()


def test_exec_and_eval_run_on_micropython(link):
    assert link.eval("1 + 2") == 3
    assert link.exec("print('hello', 6 * 7)").strip() == b"hello 42"
    import_name = link.eval("__import__('sys').implementation.name")
    assert import_name == "micropython"


def test_an_exception_on_the_board_is_one_line_naming_it(link):
    with pytest.raises(BoardCommandFailed, match="ValueError: bad reading 7"):
        link.exec("raise ValueError('bad reading 7')")
    assert link.eval("2 * 2") == 4  # and the link still works


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 3000])
def test_put_then_hash_and_read_back(link, size):
    data = os.urandom(size)
    path = f"{DIR}/sub/blob{size}.bin"
    link.put_file(path, data)
    assert link.file_hashes([path]) == {path: hashlib.sha256(data).hexdigest()}
    assert link.read_file(path) == data


def test_hash_of_a_missing_file_is_none_and_listing_is_recursive(link):
    link.put_file(f"{DIR}/a.py", b"a = 1\n")
    link.put_file(f"{DIR}/deep/er/b.py", b"b = 2\n")
    assert link.file_hashes([f"{DIR}/nope.py"]) == {f"{DIR}/nope.py": None}
    assert link.read_file(f"{DIR}/nope.py") is None
    listed = link.list_files(DIR)
    assert f"{DIR}/a.py" in listed and f"{DIR}/deep/er/b.py" in listed
    assert not any(name.endswith(".tmp") for name in listed)


def test_a_running_app_is_interrupted_and_reset_runs_main_again(board):
    link = SerialBoardLink.open(board.port)
    try:
        link.put_file("main.py", LOOPING_MAIN.encode())
        link.put_file("boots.txt", b"0")
        link.reset()
        console = wait_for_console(link, b"app booted 1", 30)
        assert b"app booted 1" in console, console
        # The app now loops forever; getting the raw REPL means Ctrl-C reached it as
        # KeyboardInterrupt.
        link.enter_raw_repl()
        assert link.read_file("boots.txt") == b"1"
        link.reset()
        console = wait_for_console(link, b"app booted 2", 30)
        assert b"app booted 2" in console, console
    finally:
        link.close()
    if board.is_rig:
        assert "KeyboardInterrupt" in board.rig.console()


def test_reset_interrupts_a_running_app_first(board):
    """A second reset in a row: the app runs, so Ctrl-D alone would not reach it."""
    link = SerialBoardLink.open(board.port)
    try:
        link.put_file("main.py", LOOPING_MAIN.encode())
        link.put_file("boots.txt", b"0")
        link.reset()
        console = wait_for_console(link, b"app booted 1")
        assert b"app booted 1" in console, console
        link.reset()
        console = wait_for_console(link, b"app booted 2")
        assert b"app booted 2" in console, f"expected a second boot, got console {console!r}"
    finally:
        link.close()


def ctrl_c_soon() -> None:
    """A real SIGINT to this process a moment later, as Ctrl-C in the terminal: it lands
    while the link waits for the board (where an upload spends its time)."""
    main = threading.main_thread().ident
    threading.Timer(0.03, signal.pthread_kill, (main, signal.SIGINT)).start()


def ctrl_c_now() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("ctrl_c", [ctrl_c_now, ctrl_c_soon], ids=["between", "during"])
def test_ctrl_c_during_an_upload_leaves_the_old_file_and_no_tmp(link, ctrl_c):
    path = f"{DIR}/ctrl_c/big.bin"
    old = b"old contents\n"
    link.put_file(path, old)
    started = []

    def progress(sent, total):
        if not started:
            started.append(sent)
            ctrl_c()

    with pytest.raises(KeyboardInterrupt):
        link.put_file(path, os.urandom(200 * 1024), progress)
    listed = link.list_files(f"{DIR}/ctrl_c")
    assert listed == [path], f"expected only {path} on the board, got {listed}"
    assert link.read_file(path) == old


def test_a_failed_write_on_the_board_leaves_no_tmp(link):
    # A folder that is not empty where the file goes: the board refuses the rename.
    folder = f"{DIR}/refused"
    link.put_file(f"{folder}/cfg/keep", b"x")
    with pytest.raises(BoardCommandFailed):
        link.put_file(f"{folder}/cfg", b"{}" * 1500)
    listed = link.list_files(folder)
    assert listed == [f"{folder}/cfg/keep"], f"expected no {folder}/cfg.tmp, got {listed}"


@pytest.fixture(scope="module", params=[TARGET])
def shared_board(tmp_path_factory):
    """One board for many generated examples (a fresh rig each would only add start-up)."""
    if HIL_PORT:
        yield HIL_PORT
        return
    rig = Rig(tmp_path_factory.mktemp("rig") / "flash").start()
    yield rig.port
    rig.stop()


@pytest.fixture(scope="module")
def shared_link(shared_board):
    opened = SerialBoardLink.open(shared_board)
    yield opened
    opened.close()


file_names = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\x00", exclude_categories=("Cs", "Cc")),
    min_size=1,
    max_size=20,
).filter(lambda name: name not in (".", ".."))


@given(data=st.binary(max_size=2500), name=file_names)
def test_any_bytes_under_any_name_round_trip(shared_link, data, name):
    # Chunk boundaries, escapes in bytes literals and non-ASCII names all go through exec.
    path = f"{DIR}/gen/{name}"
    shared_link.put_file(path, data)
    assert shared_link.file_hashes([path]) == {path: hashlib.sha256(data).hexdigest()}
    assert shared_link.read_file(path) == data
    shared_link.remove_file(path)
