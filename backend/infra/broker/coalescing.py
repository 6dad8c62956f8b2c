"""One send per connection per turn of the event loop, for amqtt's writes.

amqtt writes every packet with a `transport.write` of its own, a system call each. When
a group commit (ingestor/embedded.py) lets hundreds of PUBLISH handlers go on at once,
their PUBACKs left in as many sends: ~15% of the broker's loop under load. Here the
writes of one turn are gathered and leave together as the next turn starts, in the
order they were made. `drain` waits on what the socket has not taken yet, as amqtt's
adapter does; what is gathered is at most one turn's packets.
"""

from __future__ import annotations

import asyncio

from amqtt.adapters import StreamWriterAdapter, WriterAdapter


class CoalescingWriter(StreamWriterAdapter):
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self._pending = bytearray()
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if self.is_closed:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending += data

    def flush(self) -> None:
        if not self._pending:
            return
        data = bytes(self._pending)
        self._pending.clear()
        if not self.is_closed:  # an aborted connection sends nothing more
            self._writer.write(data)

    async def close(self) -> None:
        self.flush()
        await super().close()


def coalescing(writer: WriterAdapter) -> WriterAdapter:
    """amqtt's TCP writer, coalescing; any other (websockets) as it is."""
    if type(writer) is StreamWriterAdapter:
        return CoalescingWriter(writer._writer)
    return writer
