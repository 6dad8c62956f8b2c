"""OTA on the device (docs/ota.md), written to run unchanged under CPython (pytest collects
it through test_ota.py) and under the MicroPython unix port (`micropython ota_cases.py
<dir>` in a board folder that has lib/fieldline/ and loader.py at its root).

The Updater runs against a fake neighbour: a session whose `ota/get` requests are
answered at once by a chunk server holding a bundle built here (the chunks in the
format of docs/ota.md), so every case is a plain loop of `step()`s. The loader runs on a
scratch board root; a power cut is an exception raised at the n-th file operation.

No pytest, no f-strings: each case_* takes a scratch directory and raises on failure."""

import binascii
import hashlib
import json
import os

import loader

from fieldline import ota, ota_download

# ---- a scratch board ---------------------------------------------------------------------


def _makedirs(path):
    current = ""
    for part in path.split("/"):
        current = current + "/" + part if current else (part or "/")
        if part:
            try:  # noqa: SIM105 - no contextlib on MicroPython
                os.mkdir(current)
            except OSError:
                pass


def write(path, data):
    _makedirs(path[: path.rfind("/")])
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def sha(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def tree(path, prefix=""):
    """{relative path: bytes} of every file under path."""
    found = {}
    try:
        names = os.listdir(path)
    except OSError:
        return found
    for name in names:
        full = path + "/" + name
        data = read(full)
        if data is None:  # a folder
            found.update(tree(full, prefix + name + "/"))
        else:
            found[prefix + name] = data
    return found


# ---- a bundle and the neighbour that serves it -------------------------------------------


def make_bundle(files, version="1.4.0", mpy=None):
    """(bundle id, manifest bytes, {path: bytes}) for {path: bytes}."""
    entries = []
    for path in sorted(files):
        entries.append({"path": path, "size": len(files[path]), "sha256": sha(files[path])})
    manifest = json.dumps({"format": 1, "version": version, "mpy": mpy, "files": entries})
    manifest = manifest.encode()
    return sha(manifest), manifest, files


def big(n, seed):
    """n bytes of source-looking text that differ per seed."""
    line = "# " + seed + " "
    line = line * 8 + "\n"
    return (line * (n // len(line) + 1))[:n].encode()


NEW_FILES = {
    "app.py": big(2500, "app"),
    "lib/fieldline/device.mpy": big(3100, "device"),
    "lib/fieldline/extra.py": big(700, "extra"),
    "version.json": b'{"version": "1.4.0"}',
}


class Neighbour:
    """The bundle server: answers {"bundle", "path", "offset"} with one chunk."""

    def __init__(self, bundle, drop=None, tamper=None):
        self.id, self.manifest, self.files = bundle
        self.drop = drop  # request -> True: no answer (a lost chunk)
        self.tamper = tamper  # (request, data) -> data
        self.requests = []
        self.bytes = 0

    def answer(self, request):
        self.requests.append(request)
        if self.drop is not None and self.drop(request):
            return None
        path, offset = request["path"], request["offset"]
        data = self.manifest if path == "manifest.json" else self.files.get(path)
        if request["bundle"] != self.id or data is None:
            head = {"bundle": request["bundle"], "path": path, "offset": offset, "error": "no"}
            return json.dumps(head).encode() + b"\n"
        piece = data[offset : offset + 1024]
        if self.tamper is not None:
            piece = self.tamper(request, piece)
        head = {"bundle": self.id, "path": path, "offset": offset, "size": len(data)}
        chunk = json.dumps(head).encode() + b"\n" + piece
        self.bytes += len(chunk)
        return chunk


class Flag:
    def set(self):
        pass


class FakeJournal:
    def save_ack(self):
        pass


class FakeDevice:
    def __init__(self, data_dir):
        self.client_id = "dev-ota"
        self.data_dir = data_dir
        self._new = Flag()
        self.journal = FakeJournal()
        self.acked_batches = 0
        self.ota = None


class FakeSession:
    """What the Updater uses of a Session; requests go to the neighbour at once."""

    def __init__(self, neighbour=None):
        self.neighbour = neighbour
        self.dead = object()  # a new object: a new link
        self.inflight = []
        self.reports = []
        self.updater = None

    async def publish(self, topic, payload, retain=False, token=None):
        assert topic.endswith(b"/ota/reported"), topic
        self.reports.append(json.loads(payload))

    async def _send_small(self, build, topic, payload, pid, qos):
        assert topic.endswith(b"/ota/get") and qos == 0, (topic, qos)
        chunk = self.neighbour.answer(json.loads(payload))
        if chunk is not None:
            self.updater.received(self.updater.chunk_topic, chunk)

    def states(self):
        return [r["state"] for r in self.reports]


def run(coro):
    """One step(): nothing in it waits for real with the fake session."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("step() waited")


class Board:
    """A scratch board root with its data dir, an Updater and a session to it."""

    def __init__(self, workdir, running="1.0.0", neighbour=None):
        self.root = workdir + "/board/"
        self.data = self.root + "fieldline_data"
        _makedirs(self.data)
        if running is not None:
            write(self.root + "version.json", json.dumps({"version": running}))
        self.resets = []
        self.session = FakeSession(neighbour)
        self.updater = self.boot()

    def boot(self):
        updater = ota.Updater(FakeDevice(self.data), trial_s=5, root=self.root)
        updater.reset = lambda: self.resets.append(1)
        self.session.updater = updater
        self.updater = updater
        return updater

    def offer(self, bundle, version="1.4.0", allow=False, rollout="ro-1"):
        body = {"rollout": rollout, "version": version, "bundle": bundle[0],
                "size": len(bundle[1]), "allow_downgrade": allow}  # fmt: skip
        self.updater.received(self.updater.topic, json.dumps(body).encode())

    def steps(self, n=1000, until=None):
        for _ in range(n):
            run(self.updater.step(self.session))
            if until is not None and until():
                return
        if until is not None:
            raise AssertionError("not reached: " + repr(self.session.states()))

    def state(self):
        return loader.read_state(self.data)


def staged(board):
    return lambda: board.resets


# ---- the Updater ---------------------------------------------------------------------------


def case_download_verifies_stages_and_reboots(workdir):
    bundle = make_bundle(NEW_FILES)
    neighbour = Neighbour(bundle)
    board = Board(workdir, neighbour=neighbour)
    board.offer(bundle)
    board.steps(until=staged(board))
    state = board.state()
    assert state["state"] == "staged" and state["bundle"] == bundle[0], state
    assert sorted(state["files"]) == sorted(NEW_FILES) and state["version"] == "1.4.0"
    assert tree(board.data + "/ota/new") == NEW_FILES
    assert read(board.data + "/ota/manifest.json") == bundle[1]
    states = board.session.states()
    assert states[0] == "running" and board.session.reports[0]["version"] == "1.0.0", states
    assert states[-3:] == ["downloading", "staged", "rebooting"], states
    progress = [r["progress"] for r in board.session.reports if r["state"] == "downloading"]
    assert progress == sorted(progress) and progress[0] == 0 and progress[-1] == 100, progress
    assert len(progress) >= 5 and all(p % 10 == 0 for p in progress), progress
    for report in board.session.reports[1:]:
        assert report["rollout"] == "ro-1" and report["version"] == "1.4.0", report
    # stop-and-wait: one request per chunk, in order, nothing asked twice
    chunks = 1 + sum((len(d) + 1023) // 1024 for d in NEW_FILES.values())
    assert len(neighbour.requests) == chunks, (len(neighbour.requests), chunks)
    assert board.resets == [1]


def case_resume_after_a_power_cut_continues_at_the_length_on_flash(workdir):
    bundle = make_bundle(NEW_FILES)
    neighbour = Neighbour(bundle)
    board = Board(workdir, neighbour=neighbour)
    board.offer(bundle)
    # until lib/fieldline/device.mpy (3,100 bytes) has two chunks on flash
    board.steps(until=lambda: len(neighbour.requests) == 7)
    part = board.data + "/ota/new/lib/fieldline/device.mpy"
    assert read(part) == NEW_FILES["lib/fieldline/device.mpy"][:2048], len(read(part) or b"")
    with open(part, "ab") as f:  # the cut tore a chunk: half of it reached flash
        f.write(NEW_FILES["lib/fieldline/device.mpy"][2048:2560])
    before = len(neighbour.requests)
    board.session = FakeSession(neighbour)  # power back: a new process, a new link
    board.boot()
    board.offer(bundle)  # the retained offer arrives again
    board.steps(until=staged(board))
    resumed = neighbour.requests[before:]
    # the manifest and app.py were complete on flash: verified there, not fetched again
    assert resumed[0] == {"bundle": bundle[0], "path": "lib/fieldline/device.mpy", "offset": 2560}
    assert not [r for r in resumed if r["path"] in ("app.py", "manifest.json")], resumed
    assert tree(board.data + "/ota/new") == NEW_FILES
    assert board.state()["state"] == "staged"


def case_a_tampered_file_is_fetched_again_twice_then_failed(workdir):
    def tamper(request, data):
        if request["path"] == "app.py" and request["offset"] == 1024:
            return b"X" + data[1:]
        return data

    bundle = make_bundle(NEW_FILES)
    neighbour = Neighbour(bundle, tamper=tamper)
    board = Board(workdir, neighbour=neighbour)
    board.offer(bundle)
    board.steps(until=lambda: "failed" in board.session.states())
    starts = [r for r in neighbour.requests if r["path"] == "app.py" and r["offset"] == 0]
    assert len(starts) == 3, starts
    failed = board.session.reports[-1]
    assert failed["state"] == "failed" and "app.py failed its hash" in failed["error"], failed
    assert board.state()["state"] == "failed" and not exists(board.data + "/ota/new")
    asked = len(neighbour.requests)
    board.steps(50)
    assert len(neighbour.requests) == asked, "it went on asking after failing"
    board.offer(bundle)  # the same offer again (a reconnect): the failure is said again
    board.steps(3)
    assert board.session.states()[-1] == "failed" and len(neighbour.requests) == asked
    assert not board.resets


def case_a_tampered_manifest_is_refused(workdir):
    bundle = make_bundle(NEW_FILES)
    forged = (bundle[0], bundle[1].replace(b"1.4.0", b"9.4.0"), bundle[2])
    neighbour = Neighbour(forged)
    neighbour.id = bundle[0]
    board = Board(workdir, neighbour=neighbour)
    board.offer(bundle)
    board.steps(until=lambda: "failed" in board.session.states())
    assert "manifest.json failed its hash" in board.session.reports[-1]["error"]


def case_downgrades_are_refused_unless_allowed(workdir):
    old = make_bundle(dict(NEW_FILES, **{"version.json": b'{"version": "0.9"}'}), "0.9")
    for version, allow, outcome in (("0.9", False, "failed"), ("1.0", False, "failed"),
                                    ("0.9", True, "staged")):  # fmt: skip
        workdir_v = workdir + "/" + version + str(allow)
        board = Board(workdir_v, running="1.0.0", neighbour=Neighbour(old))
        if version == "1.0":  # the same version as the running one is no upgrade either
            same = make_bundle(NEW_FILES, "1.0")
            board.session.neighbour = Neighbour(same)
            board.offer(same, "1.0")
        else:
            board.offer(old, version, allow)
        board.steps(until=lambda b=board: b.session.states()[-1] in ("failed", "rebooting"))
        assert board.state()["state"] == outcome, (version, allow, board.state())
        if outcome == "failed":
            assert "not above the running 1.0.0" in board.state()["error"], board.state()
            assert not board.session.neighbour.requests, "a refused offer was downloaded"


def case_a_missing_version_json_runs_version_0(workdir):
    bundle = make_bundle({"app.py": b"print(1)\n"}, "0.0.1")
    board = Board(workdir, running=None, neighbour=Neighbour(bundle))
    assert board.updater.version == "0"
    board.offer(bundle, "0.0.1")
    board.steps(until=staged(board))


def case_a_bundle_for_another_bytecode_is_refused(workdir):
    mine = ota_download.board_mpy()
    other = "5.0" if mine != "5.0" else "6.3"
    bundle = make_bundle({"app.mpy": b"M\x06", "version.json": b"{}"}, mpy=other)
    board = Board(workdir, neighbour=Neighbour(bundle))
    board.offer(bundle)
    board.steps(until=lambda: "failed" in board.session.states())
    assert "built for bytecode " + other in board.state()["error"], board.state()
    assert [r["path"] for r in board.session.neighbour.requests] == ["manifest.json"]
    if mine is not None:  # the board's own bytecode is taken
        same = make_bundle({"app.mpy": b"M\x06", "version.json": b"{}"}, "1.5", mine)
        board.session.neighbour = Neighbour(same)
        board.offer(same, "1.5")
        board.steps(until=staged(board))


def case_forbidden_paths_are_refused(workdir):
    for path in ("main.py", "loader.py", "../x.py", "/abs.py", "App.py", "x.txt"):
        bundle = make_bundle({path: b"x", "version.json": b"{}"})
        board = Board(workdir + "/" + str(len(path)) + path[-3:], neighbour=Neighbour(bundle))
        board.offer(bundle)
        board.steps(until=lambda b=board: "failed" in b.session.states())
        assert "not allowed" in board.state()["error"], (path, board.state())


def case_a_lost_chunk_is_asked_for_again(workdir):
    lost = []

    def drop(request):
        if request["path"] == "app.py" and request["offset"] == 1024 and not lost:
            lost.append(request)
            return True
        return False

    from fieldline import ota_download as fresh  # what the next offer imports

    saved = fresh.RETRY_MS
    fresh.RETRY_MS = 30
    try:
        bundle = make_bundle(NEW_FILES)
        neighbour = Neighbour(bundle, drop=drop)
        board = Board(workdir, neighbour=neighbour)
        board.offer(bundle)
        board.steps(100000, until=staged(board))
    finally:
        fresh.RETRY_MS = saved
    again = [r for r in neighbour.requests if r["path"] == "app.py" and r["offset"] == 1024]
    assert len(again) == 2 and lost, again
    assert tree(board.data + "/ota/new") == NEW_FILES


def case_a_withdrawn_offer_stops_the_download(workdir):
    bundle = make_bundle(NEW_FILES)
    neighbour = Neighbour(bundle)
    board = Board(workdir, neighbour=neighbour)
    board.offer(bundle)
    board.steps(until=lambda: len(neighbour.requests) == 3)
    board.updater.received(board.updater.topic, b"")
    board.steps(20)
    assert len(neighbour.requests) == 3 and board.state() is None
    assert not exists(board.data + "/ota/new")


def case_a_new_offer_replaces_the_one_downloading(workdir):
    first = make_bundle(NEW_FILES)
    second = make_bundle(dict(NEW_FILES, **{"app.py": big(900, "second")}), "1.5")
    neighbour = Neighbour(first)
    board = Board(workdir, neighbour=neighbour)
    board.offer(first)
    board.steps(until=lambda: len(neighbour.requests) == 3)
    board.session.neighbour = Neighbour(second)
    board.offer(second, "1.5", rollout="ro-2")
    board.steps(until=staged(board))
    assert board.state()["bundle"] == second[0]
    assert tree(board.data + "/ota/new") == second[2]


# ---- the loader, then the new version's Updater ------------------------------------------


OLD_BOARD = {
    "app.py": b"print('old app')\n",
    "lib/fieldline/device.py": b"# old device\n",
    "lib/fieldline/port.py": b"# old port, untouched\n",
    "version.json": b'{"version": "1.0.0"}',
    "main.py": b"# main\n",
    "fieldline_data/journal/0.seg": b"readings",
}


def staged_board(workdir):
    """A board with OLD_BOARD's files and NEW_FILES downloaded and staged."""
    root = workdir + "/board/"
    for path, data in OLD_BOARD.items():
        write(root + path, data)
    board = Board(workdir, running=None, neighbour=Neighbour(make_bundle(NEW_FILES)))
    board.offer(make_bundle(NEW_FILES))
    board.steps(until=staged(board))
    return board


def new_tree(board):
    """What the board holds once switched (the journal and main.py untouched)."""
    expected = dict(OLD_BOARD)
    del expected["lib/fieldline/device.py"]  # the .mpy replaced it
    expected.update(NEW_FILES)
    return expected


def board_files(board):
    found = tree(board.root[:-1])
    return {k: v for k, v in found.items() if not k.startswith("fieldline_data/ota/")}


def case_loader_switches_and_the_new_version_confirms(workdir):
    board = staged_board(workdir)
    assert loader.boot(board.data, board.root) == "trial"
    assert board_files(board) == new_tree(board), sorted(board_files(board))
    state = board.state()
    assert state["state"] == "trial" and state["boots"] == 1, state
    assert sorted(state["old"]) == ["app.py", "lib/fieldline/device.py", "version.json"]
    assert tree(board.data + "/ota/old")["lib/fieldline/device.py"] == b"# old device\n"
    board.session = FakeSession()
    updater = board.boot()  # the new version's Updater
    assert updater.version == "1.4.0"
    board.steps(5)
    assert board.state()["state"] == "trial", "confirmed before a reading was acknowledged"
    assert board.session.reports == [], board.session.reports
    updater.device.acked_batches = 1
    board.steps(2)
    assert board.state()["state"] == "confirmed"
    assert board.session.reports == [{"rollout": "ro-1", "version": "1.4.0", "state": "confirmed"}]
    assert not exists(board.data + "/ota/old") and not exists(board.data + "/ota/new")
    assert loader.boot(board.data, board.root) == "confirmed"  # nothing more to do
    board.session = FakeSession()
    board.boot()
    board.steps(2)  # after a reboot: `running` with the new version
    assert board.session.reports == [{"rollout": None, "version": "1.4.0", "state": "running"}]
    board.offer(make_bundle(NEW_FILES))  # the retained offer still there: confirmed again
    board.steps(2)
    assert board.session.states()[-1] == "confirmed"


def case_loader_rolls_back_and_the_old_version_says_so(workdir):
    board = staged_board(workdir)
    assert loader.boot(board.data, board.root) == "trial"
    assert loader.roll_back(board.data, "ImportError: no module named 'x'", board.root)
    assert board_files(board) == OLD_BOARD, sorted(board_files(board))
    state = board.state()
    assert state["state"] == "rolled_back" and state["error"].startswith("ImportError"), state
    assert loader.boot(board.data, board.root) == "rolled_back"
    board.session = FakeSession(Neighbour(make_bundle(NEW_FILES)))
    updater = board.boot()
    assert updater.version == "1.0.0"
    board.steps(2)
    report = board.session.reports[0]
    assert report["state"] == "rolled_back" and report["rollout"] == "ro-1", report
    assert "no module named" in report["error"] and report["version"] == "1.4.0", report
    board.offer(make_bundle(NEW_FILES))  # the same bundle: never taken again
    board.steps(5)
    assert not board.session.neighbour.requests and not board.resets[1:]
    board.session = FakeSession()
    board.session.updater = board.updater
    board.steps(2)  # every connect says it again
    assert board.session.states() == ["rolled_back"]


def case_loader_rolls_back_after_too_many_boots(workdir):
    board = staged_board(workdir)
    for boot in (1, 2, 3):
        assert loader.boot(board.data, board.root, 3) == "trial", boot
        assert board.state()["boots"] == boot
    assert loader.boot(board.data, board.root, 3) == "rolled_back"
    assert "not confirmed in 3 boots" in board.state()["error"]
    assert board_files(board) == OLD_BOARD


class PowerCut(Exception):
    pass


class CuttingOs:
    """os for the loader, cut (PowerCut) at the n-th change to the flash."""

    def __init__(self, after):
        self.after = after
        self.done = 0
        for name in ("stat", "listdir"):
            setattr(self, name, getattr(os, name))

    def _change(self, name, *args):
        if self.done >= self.after:
            raise PowerCut(name)
        self.done += 1
        return getattr(os, name)(*args)

    def rename(self, a, b):
        return self._change("rename", a, b)

    def remove(self, a):
        return self._change("remove", a)

    def mkdir(self, a):
        return self._change("mkdir", a)


def cut_at(after, step):
    """step() with the loader's os cut after `after` changes; True when it was cut."""
    cutting = CuttingOs(after)
    loader.os = cutting
    try:
        step()
    except PowerCut:
        return True
    finally:
        loader.os = os
    return False


def case_loader_power_cut_at_every_step_of_the_switch(workdir):
    after = 0
    while True:
        board = staged_board(workdir + "/" + str(after))
        cut = cut_at(after, lambda b=board: loader.boot(b.data, b.root))
        assert loader.boot(board.data, board.root) == "trial", after  # the next boot
        assert board_files(board) == new_tree(board), (after, sorted(board_files(board)))
        assert board.state()["boots"] in (1, 2), board.state()
        loader.roll_back(board.data, "test", board.root)
        assert board_files(board) == OLD_BOARD, (after, sorted(board_files(board)))
        if not cut:
            break
        after += 1
    assert after > 10, after  # every change of a whole switch was cut once


def case_loader_power_cut_at_every_step_of_the_rollback(workdir):
    after = 0
    while True:
        board = staged_board(workdir + "/" + str(after))
        loader.boot(board.data, board.root)
        cut = cut_at(after, lambda b=board: loader.roll_back(b.data, "boom", b.root))
        if loader.boot(board.data, board.root) == "trial":  # cut before it was written down:
            assert after == 0, board.state()  # on trial again, and failing again
            loader.roll_back(board.data, "boom", board.root)
        assert board.state()["state"] == "rolled_back", (after, board.state())
        assert board.state()["error"] == "boom", board.state()
        assert board_files(board) == OLD_BOARD, (after, sorted(board_files(board)))
        if not cut:
            break
        after += 1
    assert after > 4, after


CASES = [
    case_download_verifies_stages_and_reboots,
    case_resume_after_a_power_cut_continues_at_the_length_on_flash,
    case_a_tampered_file_is_fetched_again_twice_then_failed,
    case_a_tampered_manifest_is_refused,
    case_downgrades_are_refused_unless_allowed,
    case_a_missing_version_json_runs_version_0,
    case_a_bundle_for_another_bytecode_is_refused,
    case_forbidden_paths_are_refused,
    case_a_lost_chunk_is_asked_for_again,
    case_a_withdrawn_offer_stops_the_download,
    case_a_new_offer_replaces_the_one_downloading,
    case_loader_switches_and_the_new_version_confirms,
    case_loader_rolls_back_and_the_old_version_says_so,
    case_loader_rolls_back_after_too_many_boots,
    case_loader_power_cut_at_every_step_of_the_switch,
    case_loader_power_cut_at_every_step_of_the_rollback,
]


def main(workdir):
    failed = 0
    for case in CASES:
        os.mkdir(workdir + "/" + case.__name__)
        try:
            case(workdir + "/" + case.__name__)
            print("PASS", case.__name__)
        except Exception as exc:  # noqa: BLE001 - report every case
            failed += 1
            print("FAIL", case.__name__, repr(exc))
            print_exception = getattr(__import__("sys"), "print_exception", None)
            if print_exception is not None:
                print_exception(exc)
    print("FAILED" if failed else "ALL PASSED", failed)


if __name__ == "__main__":
    import sys

    main(sys.argv[1])
