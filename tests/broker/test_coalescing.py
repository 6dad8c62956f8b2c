"""The embedded broker's coalescing writer (infra/broker/coalescing.py) on a real socket:
the writes of one turn of the event loop leave in one send, in their order; nothing
leaves after the connection was aborted; close() sends what is gathered first."""

from __future__ import annotations

import asyncio

from amqtt.adapters import StreamWriterAdapter

from fieldline_backend.infra.broker.coalescing import CoalescingWriter, coalescing


async def _pair():
    """A connected (server reader, client StreamWriter whose writes are counted)."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await asyncio.open_connection("127.0.0.1", port)
    reader, _ = await accepted
    sends: list[bytes] = []
    write = client.write

    def counted(data: bytes) -> None:
        sends.append(bytes(data))
        write(data)

    client.write = counted
    return server, reader, client, sends


def test_one_turn_of_writes_is_one_send_in_order():
    async def scenario():
        server, reader, client, sends = await _pair()
        writer = coalescing(StreamWriterAdapter(client))
        assert isinstance(writer, CoalescingWriter)
        packets = [bytes([0x40, 2, n >> 8, n & 0xFF]) for n in range(300)]  # PUBACKs
        for packet in packets:
            writer.write(packet)
            await writer.drain()  # amqtt drains after each packet; nothing leaves yet
        assert sends == []
        await asyncio.sleep(0)  # the next turn
        assert sends == [b"".join(packets)]
        received = await asyncio.wait_for(reader.readexactly(4 * 300), 5)
        assert received == b"".join(packets)
        writer.write(b"\xd0\x00")  # a later turn: a send of its own
        await asyncio.sleep(0)
        assert sends[1:] == [b"\xd0\x00"]
        await writer.close()
        server.close()

    asyncio.run(scenario())


def test_nothing_leaves_after_an_abort_and_close_flushes():
    async def scenario():
        server, reader, client, sends = await _pair()
        writer = coalescing(StreamWriterAdapter(client))
        writer.write(b"gathered")
        writer.is_closed = True  # what the broker's abort does (guarded.py _abort)
        await asyncio.sleep(0)
        assert sends == []
        writer.write(b"more")
        await asyncio.sleep(0)
        assert sends == []

        server2, reader2, client2, sends2 = await _pair()
        writer2 = coalescing(StreamWriterAdapter(client2))
        writer2.write(b"last words")
        await writer2.close()  # before the next turn
        assert sends2 == [b"last words"]
        assert await asyncio.wait_for(reader2.read(), 5) == b"last words"
        client.close()
        for s in (server, server2):
            s.close()

    asyncio.run(scenario())
