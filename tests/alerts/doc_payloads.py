"""Alert payloads as the InfluxDB 2 and Kapacitor documentation shows them.

Kapacitor: the two alerts of the TICK getting-started guide's `/tmp/alerts.log`
example (the `post` handler sends the same JSON as the `log` handler writes),
https://docs.influxdata.com/influxdb/v0.10/getting_started_tick/getting_started/
(stored in influxdata's docs repository), copied verbatim but for the `details`
string, shortened (it is a rendered template, not read by Fieldline).

InfluxDB 2: its documentation prints no literal HTTP-endpoint body. The body is the
check's status row plus `_version: 1` (the HTTP notification rule's generated Flux,
`body = {r with _version: 1}`, influxdata/influxdb notification/rule/http.go), with the
columns documented for the `statuses` measurement,
https://docs.influxdata.com/influxdb/v2/reference/internals/system-buckets/
and the notification data of the monitor.notify() example,
https://docs.influxdata.com/flux/v0/stdlib/influxdata/influxdb/monitor/notify/
The values (host, usage_idle) follow the Kapacitor example so both describe one event.
"""

KAPACITOR_CRITICAL = {
    "id": "cpu:nil",
    "message": "cpu:nil is CRITICAL",
    "details": "{&#34;Name&#34;:&#34;cpu&#34;,&#34;TaskName&#34;:&#34;cpu_alert&#34;}",
    "time": "2016-03-14T23:08:40Z",
    "level": "CRITICAL",
    "data": {
        "series": [
            {
                "name": "cpu",
                "tags": {"cpu": "cpu0", "host": "Regans-MacBook-Pro-2.local"},
                "columns": [
                    "time",
                    "usage_guest",
                    "usage_guest_nice",
                    "usage_idle",
                    "usage_iowait",
                    "usage_irq",
                    "usage_nice",
                    "usage_softirq",
                    "usage_steal",
                    "usage_system",
                    "usage_user",
                ],
                "values": [["2016-03-14T23:08:40Z", 0, 0, 69.9, 0, 0, 0, 0, 0, 2.2, 27.9]],
            }
        ]
    },
}

KAPACITOR_OK = {
    "id": "cpu:nil",
    "message": "cpu:nil is OK",
    "details": "{&#34;Name&#34;:&#34;cpu&#34;,&#34;TaskName&#34;:&#34;cpu_alert&#34;}",
    "time": "2016-03-14T23:08:40Z",
    "level": "OK",
    "data": {
        "series": [
            {
                "name": "cpu",
                "tags": {"cpu": "cpu1", "host": "Regans-MacBook-Pro-2.local"},
                "columns": [
                    "time",
                    "usage_guest",
                    "usage_guest_nice",
                    "usage_idle",
                    "usage_iowait",
                    "usage_irq",
                    "usage_nice",
                    "usage_softirq",
                    "usage_steal",
                    "usage_system",
                    "usage_user",
                ],
                "values": [["2016-03-14T23:08:40Z", 0, 0, 100, 0, 0, 0, 0, 0, 0, 0]],
            }
        ]
    },
}

INFLUXDB2_CRIT = {
    "_check_id": "0000000000000003",
    "_check_name": "CPU idle check",
    "_level": "crit",
    "_measurement": "statuses",
    "_message": "Check: CPU idle check is: crit",
    "_notification_endpoint_id": "0000000000000002",
    "_notification_endpoint_name": "example-endpoint-name",
    "_notification_rule_id": "0000000000000001",
    "_notification_rule_name": "example-rule-name",
    "_source_measurement": "cpu",
    "_source_timestamp": 1457996920000000000,
    "_status_timestamp": 1457996921000000000,
    "_time": "2016-03-14T23:08:41Z",
    "_type": "threshold",
    "_version": 1,
    "cpu": "cpu0",
    "host": "Regans-MacBook-Pro-2.local",
    "usage_idle": 69.9,
}

INFLUXDB2_OK = {
    **INFLUXDB2_CRIT,
    "_level": "ok",
    "_message": "Check: CPU idle check is: ok",
    "_time": "2016-03-14T23:18:41Z",
    "usage_idle": 98.0,
}
