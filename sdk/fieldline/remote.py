"""Remote configuration (docs/fleet.md): the server's desired config arrives retained on
devices/<id>/config as {"version": n, "config": {...}}; the app's `apply(config)` checks
it whole and switches to it (or raises: nothing changed); the version is kept on flash
and the outcome reported on devices/<id>/config/reported as
{"version": n, "status": "applied"|"rejected", "error": "..."}.

    from fieldline.remote import RemoteConfig
    remote = RemoteConfig(device, apply)      # before device.start()
    settings = remote.over(config)            # config.json's keys, then the newest remote

A separate module, so firmware that does not use it keeps its heap.
"""

import json
import os

from fieldline import port


def log(*args):
    print("fieldline:", *args)


class RemoteConfig:
    def __init__(self, device, apply, base_version=0):
        """`base_version`: the config_version provision wrote into config.json; a kept
        remote config older than that was replaced by a reflash and is ignored."""
        self.device = device
        self.apply = apply
        base = "devices/" + device.client_id
        self.topic = (base + "/config").encode()
        self.reported_topic = (base + "/config/reported").encode()
        self.path = device.data_dir + "/remote_config.json"
        self.version = int(base_version or 0)
        self.config = None  # the applied remote config, None: config.json's own
        self._pending = None
        self._report = None
        self._load()
        device.remote = self

    def _load(self):
        try:
            with open(self.path) as f:
                kept = json.load(f)
            version = int(kept["version"])
            config = kept["config"]
        except (OSError, ValueError, KeyError, TypeError):
            return  # none yet, or a torn write: config.json's settings stand
        if version >= self.version and isinstance(config, dict):
            self.version, self.config = version, config

    def over(self, config):
        """config.json's settings with the applied remote config's keys on top."""
        merged = dict(config)
        if self.config:
            merged.update(self.config)
        return merged

    def _keep(self, version, config):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"version": version, "config": config}, f)
        os.rename(tmp, self.path)  # a power cut leaves the old file or the new one

    # ---- called by the Device ---------------------------------------------------------

    def received(self, payload):
        """The retained config arrived (a view of the receive buffer: copied by Session)."""
        self._pending = payload

    async def step(self, session):
        """In the send loop: handle a config that arrived, then send its report."""
        payload = self._pending
        if payload is not None:
            self._pending = None
            self._handle(payload)
        report = self._report
        if report is not None:
            self._report = None
            await session.publish(self.reported_topic, report)

    def _handle(self, payload):
        if not payload:
            return  # the retained config was cleared (the device is being deleted)
        try:
            message = json.loads(payload)
            version = message["version"]
            config = message["config"]
            if not isinstance(version, int) or not isinstance(config, dict):
                raise ValueError("version must be an integer and config an object")
        except (ValueError, KeyError, TypeError) as exc:
            log("config message not understood:", repr(exc))
            return
        if version == self.version and self.config is not None:
            self._reported(version, None)  # again after a reconnect: the server may not know
            return
        try:
            self.apply(config)
        except Exception as exc:  # noqa: BLE001 - any failure rejects the whole version
            log("config version", version, "rejected:", repr(exc))
            self._reported(version, "%s: %s" % (type(exc).__name__, exc))
            return
        try:
            self._keep(version, config)
        except OSError as exc:  # applied, but a reboot would not keep it: say so
            log("config version", version, "applied but not saved:", repr(exc))
        self.version, self.config = version, config
        log("config version", version, "applied")
        self._reported(version, None)

    def _reported(self, version, error):
        report = {"version": version, "status": "rejected" if error else "applied"}
        if error:
            report["error"] = error[:300]
        self._report = json.dumps(report).encode()
        port.collect_garbage()
