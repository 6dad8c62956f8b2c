"""OTA updates, the device side (docs/ota.md): the retained offer on devices/<id>/ota is
checked (a version above the running one, or any with allow_downgrade), the bundle is
fetched stop-and-wait in chunks of at most 1,024 bytes over MQTT (ota/get -> ota/chunk;
fieldline.ota_download, imported only while a download runs), each file verified by
SHA-256 under <buffer dir>/ota/new/, then staged for the loader (device/loader.py), which
switches at the next boot. After that boot this Updater confirms the new version once it
is online and its first batch of readings was acknowledged.

    from fieldline.ota import Updater
    updater = Updater(device)                 # before device.start()

Files under <buffer dir>/ota/: state.json (written to a temporary file and renamed: the
update in progress, or the last outcome), manifest.json and new/<path> (the download),
old/<path> (the running version's files while the new one is on trial; the loader's).
Reports on devices/<id>/ota/reported: {"rollout", "version", "state", "progress"?,
"error"?}, `version` being the offer's; `running` (rollout null) carries the version the
board runs, after every connect when there is nothing else to say. A separate module, so
firmware that does not update over the air keeps its heap.
"""

import json
import os
import sys

from fieldline import port
from fieldline.journal import _makedirs

REBOOT_WAIT_MS = 15000  # after `rebooting`: reset at the PUBACK, or after this anyway
# An offer that found too little heap is taken again after this: right after a connect
# the heap holds the backlog's send buffers, gone a few seconds later.
RETRY_OFFER_MS = 10000


def log(*args):
    print("fieldline: ota:", *args)


def running_version(root=""):
    """The version in <root>version.json ({"version": "1.4.0"}); "0" when there is none."""
    try:
        with open(root + "version.json") as f:
            return str(json.load(f)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "0"


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def rmtree(path):
    """Remove a file or a folder with everything under it; nothing when it is not there."""
    try:
        names = os.listdir(path)
    except OSError:
        remove(path)
        return
    for name in names:
        rmtree(path + "/" + name)
    try:
        os.rmdir(path)
    except OSError:
        pass


class Updater:
    def __init__(self, device, trial_s=600, root=""):
        """`root`: the board's root folder as a path prefix ("" on a board)."""
        self.device = device
        self.trial_s = trial_s
        self.root = root
        base = "devices/" + device.client_id + "/ota"
        self.topic = base.encode()
        self.chunk_topic = (base + "/chunk").encode()
        self.get_topic = (base + "/get").encode()
        self.reported_topic = (base + "/reported").encode()
        self.dir = device.data_dir + "/ota"
        self.state_path = self.dir + "/state.json"
        self.reset = port.reset  # the simulator, which cannot restart, replaces it
        self.version = running_version(root)
        self.record = read_json(self.state_path)  # the update in progress or the last outcome
        if not isinstance(self.record, dict):
            self.record = {}
        self.job = None  # a fieldline.ota_download.Download while one runs
        self.stats = None  # the last download's numbers
        self._offer = None  # raw payloads from the reader task, handled in step()
        self._chunk = None
        self._reports = []
        self._link = None
        self._reboot_at = None
        self._later = None  # an offer that found too little memory, and when
        if self.state() in ("confirmed", "rolled_back", "failed"):
            self.clean()  # left over from a cut before the cleanup (a stat or three)
        device.ota = self

    def state(self):
        return self.record.get("state")

    # ---- called by the Device ---------------------------------------------------------

    def received(self, topic, payload):
        """From the reader task: keep it (the payload is a copy) for step()."""
        if topic == self.topic:
            self._offer = payload
        else:
            self._chunk = payload

    async def step(self, session):
        """In the send loop: handle what arrived, ask for the next chunk, send reports."""
        if session.dead is not self._link:  # a new link: say where this board stands
            self._link = session.dead
            self._connected()
        if (
            self._later is not None
            and port.ticks_diff(port.ticks_ms(), self._later[1]) > RETRY_OFFER_MS
        ):
            self._offer, self._later = self._later[0], None
        offer, self._offer = self._offer, None
        if offer is not None:
            self._take_offer(offer)
        chunk, self._chunk = self._chunk, None
        if chunk is not None and self.job is not None:
            self.job.take(chunk)
        if self.state() == "trial" and self.device.acked_batches:
            self._confirm()
        while self._reports:
            await session.publish(self.reported_topic, self._reports.pop(0))
        if self.job is not None:
            await self.job.ask(session)
        if self._reboot_at is not None:
            self._maybe_reset(session)

    # ---- reports and the record ----------------------------------------------------------

    def report(self, state, version, rollout=None, progress=None, error=None):
        body = {"rollout": rollout, "version": version, "state": state}
        if progress is not None:
            body["progress"] = progress
        if error:
            body["error"] = error[:300]
        self._reports.append(json.dumps(body).encode())
        self.device._new.set()

    def _report_record(self):
        r = self.record
        self.report(r["state"], r.get("version"), r.get("rollout"), None, r.get("error"))

    def _connected(self):
        state = self.state()
        if state == "rolled_back":
            self._report_record()  # every connect (the server may not have it yet)
        elif state != "trial":  # on trial: `confirmed` is what it says next
            self.report("running", self.version)
        if self.job is not None:
            self.job.again()  # a chunk asked for on the dead link is not coming

    def set_record(self, state, offer, error=None, **extra):
        """state.json: `state` of the offer (bundle, version, rollout)."""
        record = {"state": state, "bundle": offer[0], "version": offer[1], "rollout": offer[2]}
        if error:
            record["error"] = error[:300]
        record.update(extra)
        tmp = self.state_path + ".tmp"
        _makedirs(self.dir)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, self.state_path)  # a power cut leaves the old file or the new one
        self.record = record

    def clean(self):
        rmtree(self.dir + "/new")
        rmtree(self.dir + "/old")
        remove(self.dir + "/manifest.json")

    # ---- the offer ---------------------------------------------------------------------

    def _take_offer(self, payload):
        self._later = None
        if not payload:  # no offer (cancelled): a download in progress is dropped
            if self.job is not None or self.state() == "downloading":
                self._work().withdrawn(self)
            return
        try:
            offer = json.loads(payload)
            bundle = offer["bundle"]
            version = str(offer["version"])
            size = int(offer["size"])
            rollout = offer.get("rollout")
            allow = bool(offer.get("allow_downgrade"))
            if not isinstance(bundle, str) or len(bundle) != 64:
                raise ValueError("bundle must be 64 hex digits")
        except (ValueError, KeyError, TypeError) as exc:
            log("offer not understood:", repr(exc))
            return
        if self._known(bundle) or self._reboot_at is not None:
            return
        if self.state() == "trial":
            log("offer of", version, "waits: the running version is on trial")
            return
        try:  # the download's code, only now (from source its compile needs ~25 KB)
            work = self._work()
        except MemoryError:
            self.drop_work()
            log("no memory for the download now; trying again in", RETRY_OFFER_MS // 1000, "s")
            self._later = (payload, port.ticks_ms())
            return
        work.take_offer(self, (bundle, version, rollout), size, allow)

    def _work(self):
        import fieldline.ota_download

        return fieldline.ota_download

    def _known(self, bundle):
        """True when this offer needs nothing more (repairing a lost report if need be)."""
        if self.job is not None and self.job.offer[0] == bundle:
            return True  # downloading it now
        if self.record.get("bundle") != bundle:
            return False
        state = self.state()
        if state == "downloading":
            return False  # resume it
        if state in ("confirmed", "failed"):
            self._report_record()  # the server may not have it: say it again
        return True  # and never take a rolled-back bundle again

    def drop_work(self):
        """A download ended: its job and its code go (the heap back)."""
        if self.job is not None:
            self.job.close()
            self.job = None
        sys.modules.pop("fieldline.ota_download", None)
        try:
            import fieldline

            delattr(fieldline, "ota_download")
        except (AttributeError, KeyError):  # MicroPython: KeyError when it is not there
            pass
        port.collect_garbage()

    # ---- the end of a download -----------------------------------------------------------

    def _maybe_reset(self, session):
        waited = port.ticks_diff(port.ticks_ms(), self._reboot_at)
        if session.inflight and waited < REBOOT_WAIT_MS:
            return  # `rebooting` (and the readings before it) not acknowledged yet
        self.device.journal.save_ack()
        log("rebooting into the update")
        self._reboot_at = None
        self.reset()

    # ---- the trial -----------------------------------------------------------------------

    def _confirm(self):
        """Online and the first batch of this boot acknowledged: the new version works."""
        r = self.record
        offer = (r.get("bundle"), r.get("version"), r.get("rollout"))
        self.set_record("confirmed", offer)
        self.clean()
        log("confirmed", offer[1])
        self.report("confirmed", offer[1], offer[2])
