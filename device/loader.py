"""The OTA loader (docs/ota.md, steps 3-5): switches to a staged update at boot, counts
the boots of a version on trial and rolls it back. main.py imports it only when
<data dir>/ota/state.json exists. It lives at the board's root next to main.py and is
never part of a bundle, so an update cannot break it; os and json only, so it runs on
MicroPython and CPython alike (the simulator loads it by path).

Every step is idempotent: a power cut at any point leaves a state.json (written to a
temporary file and renamed) whose step the next boot repeats. Files move by rename
(atomic, no second copy on flash):

  staged     each file the bundle replaces (and the .py/.mpy of the same module) goes
             root -> ota/old/; a file gone from the root and present in old/ was moved
             already. Then `switching`, with the list of what old/ holds.
  switching  each file ota/new/<path> -> <path>; one no longer in new/ is in place.
             Then `trial` with boots 0.
  trial      every boot counts; past `trial_boots` without confirmation: rolled back.
  rolling_back  the bundle's files that replaced nothing are removed, old/ moves back;
             then `rolled_back` with the reason (the old version's Updater reports it).

    import loader
    state = loader.boot("fieldline_data")   # "trial": run the app on trial
    loader.roll_back("fieldline_data", "ImportError: no module named 'x'")
"""

import json
import os

TRIAL_BOOTS = 3


def read_state(data_dir):
    try:
        with open(data_dir + "/ota/state.json") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(data_dir, state):
    path = data_dir + "/ota/state.json"
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.rename(path + ".tmp", path)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _makedirs_for(path):
    current = ""
    for part in path.split("/")[:-1]:
        current = current + "/" + part if current else (part or "/")
        if part:
            try:
                os.mkdir(current)
            except OSError:
                pass


def _move(src, dst):
    _makedirs_for(dst)
    os.rename(src, dst)


def _other_form(path):
    """The .mpy of a .py module and the other way round (MicroPython finds the .py first,
    so a module changing form must not leave the other behind)."""
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    return None


def _back_up(data_dir, root, state):
    """staged -> switching: the files the bundle replaces go to old/."""
    old = []
    for path in state["files"]:
        for name in (path, _other_form(path)):
            if name is None or name in old:
                continue
            kept = data_dir + "/ota/old/" + name
            if _exists(root + name):
                _move(root + name, kept)
            if _exists(kept):
                old.append(name)
    state["state"] = "switching"
    state["old"] = old
    write_state(data_dir, state)


def _switch(data_dir, root, state):
    """switching -> trial: the new files into place."""
    for path in state["files"]:
        new = data_dir + "/ota/new/" + path
        if _exists(new):
            _move(new, root + path)
    state["state"] = "trial"
    state["boots"] = 0
    write_state(data_dir, state)


def boot(data_dir, root="", trial_boots=TRIAL_BOOTS):
    """At boot, before the app is imported: finish whatever step state.json is in. Returns
    the state after it ("trial": the app runs on trial; None: no update going on)."""
    state = read_state(data_dir)
    if state is None:
        return None
    name = state.get("state")
    if name == "staged":
        print("fieldline: switching to version", state.get("version"))
        _back_up(data_dir, root, state)
        name = "switching"
    if name == "switching":
        _switch(data_dir, root, state)
        name = "trial"
    if name == "rolling_back":
        return roll_back(data_dir, state.get("error") or "rolled back", root)
    if name != "trial":
        return name
    state["boots"] = int(state.get("boots") or 0) + 1
    if state["boots"] > trial_boots:
        return roll_back(data_dir, "not confirmed in %d boots" % trial_boots, root)
    write_state(data_dir, state)
    print("fieldline: version %s on trial (boot %d)" % (state.get("version"), state["boots"]))
    return "trial"


def roll_back(data_dir, reason, root=""):
    """The version on trial failed: the old files back, the added ones removed, state
    `rolled_back` with the reason. Returns "rolled_back"."""
    state = read_state(data_dir)
    if state is None or state.get("state") not in ("switching", "trial", "rolling_back"):
        return state.get("state") if state else None
    if state["state"] != "rolling_back":
        state["state"] = "rolling_back"
        state["error"] = str(reason)[:300]
        write_state(data_dir, state)
    print("fieldline: rolling back version %s: %s" % (state.get("version"), state["error"]))
    old = state.get("old") or []
    for path in state["files"]:
        if path not in old:
            try:
                os.remove(root + path)
            except OSError:
                pass
    for name in old:
        kept = data_dir + "/ota/old/" + name
        if _exists(kept):
            _move(kept, root + name)
    done = {"state": "rolled_back", "error": state["error"]}
    for key in ("rollout", "version", "bundle"):
        done[key] = state.get(key)
    write_state(data_dir, done)
    return "rolled_back"
