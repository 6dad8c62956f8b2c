# Runs under the real `micropython` (unix port): a device on micropython-lib's
# umqtt.simple, as a firmware developer would write it. Prints one line per message
# received and "done <count>" at the end; a crash prints MicroPython's traceback.
#
#   micropython umqtt_probe.py HOST PORT CLIENT_ID PASSWORD SECONDS [SUBSCRIBE_TOPIC]
import sys
import time

from umqtt.simple import MQTTClient

host, port, client_id, password, seconds = sys.argv[1:6]
subscribe = sys.argv[6] if len(sys.argv) > 6 else None
received = []


def on_message(topic, msg):
    received.append(topic)
    print("message", topic.decode(), msg.decode())


client = MQTTClient(client_id, host, int(port), user=client_id, password=password, keepalive=30)
if subscribe:
    client.set_callback(on_message)
client.connect()  # clean session, as umqtt.simple's default
print("connected")
if subscribe:
    client.subscribe(subscribe, qos=1)
    print("subscribed", subscribe)
deadline = time.ticks_add(time.ticks_ms(), int(float(seconds) * 1000))
while time.ticks_diff(deadline, time.ticks_ms()) > 0:
    client.check_msg()
    time.sleep_ms(20)
client.disconnect()
print("done", len(received))
