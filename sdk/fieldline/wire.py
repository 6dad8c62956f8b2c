"""MQTT 3.1.1 packets, built into a caller's preallocated buffer so each packet goes out in
one write (umqtt writes in pieces and pays Nagle's delay for it).

Every builder takes a bytearray, writes one whole packet from offset 0 and returns its
length; `*_size` functions say how big the buffer must be. Strings are bytes. Parsers take
the packet body (after the fixed header). Protocol violations raise ProtocolError.
"""

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

DUP_FLAG = 0x08
MAX_REMAINING = 268435455

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class ProtocolError(Exception):
    pass


def varint_size(n):
    if n < 0 or n > MAX_REMAINING:
        raise ValueError("MQTT packet too large: %d bytes" % n)
    size = 1
    while n > 127:
        n >>= 7
        size += 1
    return size


def _put_varint(buf, i, n):
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            buf[i] = byte | 0x80
            i += 1
        else:
            buf[i] = byte
            return i + 1


def _put_u16(buf, i, n):
    buf[i] = (n >> 8) & 0xFF
    buf[i + 1] = n & 0xFF
    return i + 2


def _put_str(buf, i, s):
    n = len(s)
    if n > 65535:
        raise ValueError("MQTT string longer than 65535 bytes")
    i = _put_u16(buf, i, n)
    buf[i : i + n] = s
    return i + n


def _start(buf, first_byte, body):
    size = 1 + varint_size(body) + body
    if len(buf) < size:
        raise ValueError("packet needs %d bytes, buffer has %d" % (size, len(buf)))
    buf[0] = first_byte
    return _put_varint(buf, 1, body)


def _connect_body(client_id, username, password, will_topic, will_message):
    body = 10 + 2 + len(client_id)
    if will_topic is not None:
        body += 4 + len(will_topic) + len(will_message or b"")
    if username is not None:
        body += 2 + len(username)
    if password is not None:
        body += 2 + len(password)
    return body


def connect_size(client_id, username=None, password=None, will_topic=None, will_message=None):
    body = _connect_body(client_id, username, password, will_topic, will_message)
    return 1 + varint_size(body) + body


def connect(
    buf,
    client_id,
    keepalive_s,
    clean_session=False,
    username=None,
    password=None,
    will_topic=None,
    will_message=None,
    will_qos=0,
    will_retain=False,
):
    flags = 0x02 if clean_session else 0
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    body = _connect_body(client_id, username, password, will_topic, will_message)
    i = _start(buf, CONNECT, body)
    i = _put_str(buf, i, b"MQTT")
    buf[i] = 4  # protocol level: 3.1.1
    buf[i + 1] = flags
    i = _put_u16(buf, i + 2, keepalive_s)
    i = _put_str(buf, i, client_id)
    if will_topic is not None:
        i = _put_str(buf, i, will_topic)
        i = _put_str(buf, i, will_message or b"")
    if username is not None:
        i = _put_str(buf, i, username)
    if password is not None:
        i = _put_str(buf, i, password)
    return i


def publish_size(topic, payload_len, qos=1):
    body = 2 + len(topic) + payload_len + (2 if qos else 0)
    return 1 + varint_size(body) + body


def publish(buf, topic, payload, pid=0, qos=1, retain=False, dup=False):
    if qos and not 0 < pid < 65536:
        raise ValueError("QoS %d PUBLISH needs a packet id 1..65535" % qos)
    body = 2 + len(topic) + len(payload) + (2 if qos else 0)
    first = PUBLISH | (qos << 1) | (1 if retain else 0) | (DUP_FLAG if dup else 0)
    i = _start(buf, first, body)
    i = _put_str(buf, i, topic)
    if qos:
        i = _put_u16(buf, i, pid)
    n = len(payload)
    buf[i : i + n] = payload
    return i + n


def puback(buf, pid):
    i = _start(buf, PUBACK, 2)
    return _put_u16(buf, i, pid)


def subscribe(buf, pid, topic, qos=1):
    i = _start(buf, SUBSCRIBE, 2 + 2 + len(topic) + 1)
    i = _put_u16(buf, i, pid)
    i = _put_str(buf, i, topic)
    buf[i] = qos
    return i + 1


def pingreq(buf):
    buf[0] = PINGREQ
    buf[1] = 0
    return 2


def disconnect(buf):
    buf[0] = DISCONNECT
    buf[1] = 0
    return 2


# ---- parsing ---------------------------------------------------------------------------


def decode_varint_step(value, shift, byte):
    """One byte of a remaining-length field: (value, done)."""
    if shift > 21:
        raise ProtocolError("remaining length longer than 4 bytes")
    return value | ((byte & 0x7F) << shift), not (byte & 0x80)


def parse_connack(body):
    """(session_present, return_code) from a CONNACK body."""
    if len(body) != 2:
        raise ProtocolError("CONNACK body must be 2 bytes, got %d" % len(body))
    return bool(body[0] & 1), body[1]


def parse_packet_id(body):
    if len(body) < 2:
        raise ProtocolError("packet id missing")
    return (body[0] << 8) | body[1]


def parse_publish(first_byte, body):
    """(topic bytes, packet id or 0, payload memoryview/bytes, qos) of an incoming PUBLISH."""
    qos = (first_byte >> 1) & 3
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise ProtocolError("PUBLISH without topic")
    n = (body[0] << 8) | body[1]
    if 2 + n > len(body):
        raise ProtocolError("PUBLISH topic longer than the packet")
    topic = bytes(body[2 : 2 + n])
    i = 2 + n
    pid = 0
    if qos:
        pid = parse_packet_id(body[i : i + 2])
        i += 2
    return topic, pid, body[i:], qos
