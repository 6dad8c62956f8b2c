# Runs under the real `micropython` (unix port): a device on micropython-lib's
# umqtt.simple fetching one file of an OTA bundle from the bundle server, stop-and-wait,
# as docs/ota.md has it: publish {"bundle", "path", "offset"} on devices/<id>/ota/get,
# take one chunk (a JSON line, "\n", at most 1,024 bytes) from devices/<id>/ota/chunk.
# Prints "error <header>" for an error chunk, else "file <size> <sha256 hex>".
#
#   micropython umqtt_ota_probe.py HOST PORT CLIENT_ID PASSWORD BUNDLE PATH
import binascii
import hashlib
import json
import sys
import time

from umqtt.simple import MQTTClient

host, port, client_id, password, bundle, path = sys.argv[1:7]
chunks = []


def on_message(topic, msg):
    chunks.append(msg)


client = MQTTClient(client_id, host, int(port), user=client_id, password=password, keepalive=30)
client.set_callback(on_message)
client.connect()
client.subscribe("devices/" + client_id + "/ota/chunk", qos=0)
data = b""
while True:
    request = json.dumps({"bundle": bundle, "path": path, "offset": len(data)})
    for _attempt in range(15):  # QoS 0: asked again after a second without an answer
        client.publish("devices/" + client_id + "/ota/get", request)
        deadline = time.ticks_add(time.ticks_ms(), 1000)
        while not chunks and time.ticks_diff(deadline, time.ticks_ms()) > 0:
            client.check_msg()
            time.sleep_ms(5)
        if chunks:
            break
    if not chunks:
        print("timeout at", len(data))
        break
    msg = chunks.pop(0)
    end = msg.index(b"\n")
    header = json.loads(msg[:end])
    if "error" in header:
        print("error", msg[:end].decode())
        break
    data += msg[end + 1 :]
    if len(msg) - end - 1 > 1024:
        print("chunk too large")
        break
    if len(data) >= header["size"]:
        print("file", len(data), binascii.hexlify(hashlib.sha256(data).digest()).decode())
        break
client.disconnect()
