"""Commands from the server (docs/fleet.md): each arrives on devices/<id>/commands as
{"id", "name", "args", "expires"}; the device says it has it ({"id", "status":
"delivered"}), runs its handler (sync or async, within a timeout) and answers
{"id", "ok": true, "result"} or {"id", "ok": false, "error"} on
devices/<id>/commands/result. Each id runs once; one that arrives after `expires`
(when the clock is set) is refused, not run.

    from fieldline.commands import Commands
    commands = Commands(device)               # before device.start()

    @commands.command("open_valve", timeout_ms=5000)
    async def open_valve(args):
        ...
        return {"opened": args.get("seconds", 10)}

Built in: ping, sync_time, flush, reboot. A separate module, so firmware that does not
take commands keeps its heap.
"""

import json

from fieldline import port
from fieldline.port import asyncio

SEEN_IDS = 16  # ids remembered to run each once (a copy comes after a server restart)
QUEUE_MAX = 8  # commands waiting to start; more are refused, not queued without bound


def log(*args):
    print("fieldline:", *args)


class Commands:
    def __init__(self, device, timeout_ms=10000):
        self.device = device
        self.timeout_ms = timeout_ms
        self.topic = device.commands_topic
        self.result_topic = ("devices/" + device.client_id + "/commands/result").encode()
        self.handlers = {}
        self._seen = []
        self._incoming = []
        self._answers = []
        self._reboot = False
        self.command("ping")(self._ping)
        self.command("sync_time")(self._sync_time)
        self.command("flush")(self._flush)
        self.command("reboot")(self._reboot_now)
        device.commands = self

    def command(self, name, timeout_ms=None):
        """Decorator: register `handler(args) -> result` (a JSON value) under `name`."""

        def register(handler):
            self.handlers[name] = (handler, timeout_ms or self.timeout_ms)
            return handler

        return register

    # ---- built in ---------------------------------------------------------------------

    def _unsent(self):
        journal = self.device.journal
        return journal.end_pos - journal.ack_pos

    def _ping(self, args):
        clock = self.device.clock
        return {"boot": clock.boot, "seq": clock.seq, "unsent_bytes": self._unsent()}

    def _sync_time(self, args):
        port.sync_time()
        return {"synced": port.time_is_synced(), "ms": port.epoch_ms()}

    def _flush(self, args):
        self.device._new.set()  # the sender stops waiting and drains now
        return {"unsent_bytes": self._unsent()}

    def _reboot_now(self, args):
        self._reboot = True  # after the answer is acknowledged (see step)
        return {"rebooting": True}

    # ---- called by the Device ---------------------------------------------------------

    def received(self, payload):
        if len(self._incoming) >= QUEUE_MAX:
            log("command refused: %d already waiting" % QUEUE_MAX)
            return
        self._incoming.append(payload)

    async def step(self, session):
        """In the send loop: start what arrived, send what finished."""
        while self._incoming:
            self._start(self._incoming.pop(0))
        while self._answers:
            await session.publish(self.result_topic, self._answers.pop(0))
        if self._reboot and not session.inflight:
            self.device.journal.save_ack()
            log("rebooting (command)")
            port.reset()

    def _answer(self, body):
        self._answers.append(json.dumps(body).encode())
        self.device._new.set()

    def _start(self, payload):
        try:
            message = json.loads(payload)
            command_id = message["id"]
            name = message["name"]
            args = message.get("args") or {}
            expires = message.get("expires") or 0
        except (ValueError, KeyError, TypeError) as exc:
            log("command not understood:", repr(exc))
            return
        if command_id in self._seen:
            return  # ran already: this is a copy
        self._seen.append(command_id)
        if len(self._seen) > SEEN_IDS:
            self._seen.pop(0)
        if expires and port.time_is_synced() and port.epoch_ms() > expires:
            self._failed(command_id, "expired before it arrived")
            return
        entry = self.handlers.get(name)
        if entry is None:
            self._failed(command_id, "unknown command %r" % name)
            return
        self._answer({"id": command_id, "status": "delivered"})
        asyncio.create_task(self._run(command_id, entry[0], args, entry[1]))

    async def _run(self, command_id, handler, args, timeout_ms):
        try:
            result = handler(args)
            if hasattr(result, "send"):  # a coroutine: an async handler
                result = await asyncio.wait_for(result, timeout_ms / 1000)
            self._answer({"id": command_id, "ok": True, "result": result})
        except asyncio.TimeoutError:
            self._failed(command_id, "timed out after %d ms" % timeout_ms)
        except Exception as exc:  # noqa: BLE001 - the handler's failure is the answer
            self._failed(command_id, "%s: %s" % (type(exc).__name__, exc))

    def _failed(self, command_id, error):
        self._answer({"id": command_id, "ok": False, "error": error[:300]})
