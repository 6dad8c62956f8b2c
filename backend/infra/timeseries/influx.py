"""The time-series port on InfluxDB's 1.x HTTP API: line protocol in, InfluxQL out.

The 1.x API is the one InfluxDB 1.8, 2.x (v1 compatibility, token auth) and 3 all
serve. Times are ms (a reading without ts may sit some microseconds into its ms,
Point.tiebreak_us; reads answer in ms, truncated). Every number is written as a float
because InfluxDB fixes a field's type per shard and JSON does not tell 21 from 21.0 (a
device sending both would otherwise have half its readings refused).
"""

from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Sequence
from dataclasses import replace

import httpx

from fieldline_backend.infra.timeseries import (
    BOOT_FIELD,
    DROPPED_FIELD,
    DROPS_MEASUREMENT,
    MEASUREMENT,
    RECEIVED_FIELD,
    REJECTS_MEASUREMENT,
    SEQ_FIELD,
    STATUS_MEASUREMENT,
    DeviceStatus,
    DropReport,
    Point,
    QueryError,
    ReadingMark,
    Series,
    TimeSeriesRejected,
    TimeSeriesUnavailable,
    Value,
)
from fieldline_backend.infra.timeseries.lineprotocol import to_lines
from fieldline_backend.infra.timeseries.paging import Page, cut

log = logging.getLogger(__name__)

AGGREGATES = ("mean", "min", "max", "last", "count")
_DURATION = re.compile(r"^(INF|\d+[hdw]|\d+m)$")
RETENTION_POLICY = "fieldline"


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _devices_clause(device_ids: Sequence[str]) -> str:
    return "(" + " OR ".join(f'"device_id" = {quote_literal(d)}' for d in device_ids) + ")"


DEVICES_PER_QUERY = 100  # keeps a bulk read's URL (one OR term per device) near 5 KB
STATEMENTS_PER_REQUEST = 50


def _slices(device_ids: Sequence[str]) -> list[Sequence[str]]:
    return [
        device_ids[i : i + DEVICES_PER_QUERY] for i in range(0, len(device_ids), DEVICES_PER_QUERY)
    ]


def _named_fields(series: dict, limit: int | None) -> set[str]:
    """The value names a `SELECT last(*)` row has values of (marks left out), the first
    `limit` by name."""
    names = []
    for column, value in zip(series["columns"], series["values"][0], strict=False):
        name = column.removeprefix("last_")
        if column.startswith("last_") and not name.startswith("@") and value is not None:
            names.append(name)
    return set(sorted(names)[:limit])


class InfluxStore:
    parallel_reads = True  # each read is an HTTP round trip, mostly waiting on the server

    def __init__(
        self,
        url: str,
        database: str,
        token: str | None = None,
        retention: str = "INF",
        timeout: float = 10.0,
    ):
        if not _DURATION.match(retention):
            raise ValueError(
                f"FIELDLINE_INFLUX_RETENTION={retention!r} is not a duration; "
                "use INF or a number with h, d or w, e.g. 30d"
            )
        self.database = database
        self.retention = retention
        headers = {"Authorization": f"Token {token}"} if token else {}
        self.token = token
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    # ---- schema ------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        if self.token:
            # InfluxDB 2.x/3: databases are buckets made by the operator, mapped by DBRP.
            log.info("InfluxDB with a token: expecting bucket %s to exist", self.database)
            return
        db = quote_ident(self.database)
        self._post_query(f"CREATE DATABASE {db}")
        existing = self._select(f"SHOW RETENTION POLICIES ON {db}", use_db=False)
        names = {row[0] for series in existing for row in series.get("values", [])}
        verb = "ALTER" if RETENTION_POLICY in names else "CREATE"
        self._post_query(
            f"{verb} RETENTION POLICY {quote_ident(RETENTION_POLICY)} ON {db} "
            f"DURATION {self.retention} REPLICATION 1 DEFAULT"
        )

    # ---- writes ------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        if points:
            self._write_lines(to_lines(_as_floats(p) for p in points))

    def write_status(self, device_id: str, online: bool, ts_ms: int) -> None:
        point = Point(device_id=device_id, ts_ms=ts_ms, fields={"online": online})
        self._write_lines(to_lines([point], STATUS_MEASUREMENT))

    def write_drops(self, device_id: str, boot: int, dropped: int, ts_ms: int) -> None:
        point = Point(device_id=device_id, ts_ms=ts_ms, fields={"boot": boot, "dropped": dropped})
        self._write_lines(to_lines([point], DROPS_MEASUREMENT))

    def write_rejected(self, device_id: str, ts_ms: int) -> None:
        point = Point(device_id=device_id, ts_ms=ts_ms, fields={"rejected": 1})
        self._write_lines(to_lines([point], REJECTS_MEASUREMENT))

    def rejected(self, device_id: str, start_ms: int, stop_ms: int) -> int:
        """How many of the device's messages storage dead-lettered in [start, stop)."""
        rows = self._select(
            f'SELECT count("rejected") FROM {quote_ident(REJECTS_MEASUREMENT)} '
            f"WHERE {_devices_clause([device_id])} AND time >= {int(start_ms)}ms "
            f"AND time < {int(stop_ms)}ms"
        )
        return sum(int(v[1] or 0) for series in rows for v in series.get("values", []))

    def drop_reports(self, device_id: str, start_ms: int, stop_ms: int) -> list[DropReport]:
        rows = self._select(
            f'SELECT "boot", "dropped" FROM {quote_ident(DROPS_MEASUREMENT)} '
            f"WHERE {_devices_clause([device_id])} AND time >= {int(start_ms)}ms "
            f"AND time < {int(stop_ms)}ms"
        )
        return [
            DropReport(int(ts), int(boot), int(dropped))
            for series in rows
            for ts, boot, dropped in series.get("values", [])
            if boot is not None and dropped is not None
        ]

    def _write_lines(self, body: str) -> None:
        try:
            response = self.http.post(
                "/write", params={"db": self.database, "precision": "u"}, content=body
            )
        except httpx.HTTPError as error:
            raise TimeSeriesUnavailable(f"InfluxDB unreachable: {error}") from error
        if response.status_code == 204:
            return
        message = _error_text(response)
        if response.status_code == 400:
            raise TimeSeriesRejected(f"InfluxDB refused the write: {message}")
        raise TimeSeriesUnavailable(f"InfluxDB write failed ({response.status_code}): {message}")

    # ---- reads -------------------------------------------------------------------------

    def query(self, device_ids, fields, start_ms, stop_ms, every_ms=None, agg=None) -> Series:
        # Typed and documented once, in the port (TimeSeriesReader.query).
        result: Series = {d: {} for d in device_ids}
        if not device_ids or not fields:
            return result
        for name, device, points in self._series(
            device_ids, fields, start_ms, stop_ms, every_ms, agg
        ):
            if device in result and points:
                result[device][name] = points
        return result

    def page(self, device_ids, fields, start_ms, stop_ms, limit, every_ms=None, agg=None) -> Page:
        # Typed and documented once, in the port (TimeSeriesReader.page).
        devices, names = sorted(set(device_ids)), sorted(set(fields))
        if not devices or not names:
            return Page({d: {} for d in device_ids}, None)
        # LIMIT applies per series (per field and device): limit + 1 points of each are
        # all a page can need, so InfluxDB sends at most that much whatever the range.
        found = self._series(devices, names, start_ms, stop_ms, every_ms, agg, limit + 1)
        rows = heapq.merge(
            *(
                [(ts, device, name, value) for ts, value in points]
                for name, device, points in found
                if device in devices
            )
        )
        return cut(rows, device_ids, limit)

    def _series(self, device_ids, fields, start_ms, stop_ms, every_ms, agg, limit=None):
        """(field, device_id, [(ts, value), ...]) of each series found, one InfluxQL
        statement per field (so an error names its field)."""
        if agg is not None and agg not in AGGREGATES:
            raise QueryError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGREGATES)}")
        where = (
            f"{_devices_clause(device_ids)} AND time >= {int(start_ms)}ms "
            f"AND time < {int(stop_ms)}ms"
        )
        tail = f" LIMIT {int(limit)}" if limit else ""
        statements = []
        for name in fields:
            selector = f"{quote_ident(name)}::field"
            if agg:
                every = int(every_ms or max(stop_ms - start_ms, 1))
                statements.append(
                    f"SELECT {agg}({selector}) AS value FROM {quote_ident(MEASUREMENT)} "
                    f'WHERE {where} GROUP BY time({every}ms), "device_id" fill(none){tail}'
                )
            else:
                statements.append(
                    f"SELECT {selector} AS value FROM {quote_ident(MEASUREMENT)} "
                    f'WHERE {where} GROUP BY "device_id"{tail}'
                )
        found = []
        for name, statement_result in zip(fields, self._query(";".join(statements)), strict=True):
            if "error" in statement_result:
                raise QueryError(f"field {name!r}: {statement_result['error']}")
            for series in statement_result.get("series", []):
                points = [
                    (int(ts), _value(value, agg))
                    for ts, value in series.get("values", [])
                    if value is not None
                ]
                found.append((name, series.get("tags", {}).get("device_id"), points))
        return found

    def last_seen(self, device_ids: Sequence[str]) -> dict[str, int]:
        if not device_ids:
            return {}
        rows = self._select(
            f"SELECT last({quote_ident(RECEIVED_FIELD)}) FROM {quote_ident(MEASUREMENT)} "
            f'WHERE {_devices_clause(device_ids)} GROUP BY "device_id"'
        )
        return {s["tags"]["device_id"]: int(s["values"][0][0]) for s in rows if s.get("values")}

    def statuses(self, device_ids: Sequence[str]) -> dict[str, DeviceStatus]:
        if not device_ids:
            return {}
        rows = self._select(
            f'SELECT last("online") FROM {quote_ident(STATUS_MEASUREMENT)} '
            f'WHERE {_devices_clause(device_ids)} GROUP BY "device_id"'
        )
        found = {}
        for series in rows:
            if series.get("values"):
                ts, online = series["values"][0][:2]
                found[series["tags"]["device_id"]] = DeviceStatus(bool(online), int(ts))
        return found

    def latest(
        self, device_id: str, start_ms: int, limit: int | None = None
    ) -> dict[str, tuple[int, Value]]:
        # Typed and documented once, in the port (TimeSeriesReader.latest).
        return self.latest_by_device([device_id], start_ms, limit)[device_id]

    def latest_by_device(self, device_ids, start_ms, limit=None):
        found: dict[str, dict[str, tuple[int, Value]]] = {d: {} for d in device_ids}
        for part in _slices(device_ids):
            where = f"{_devices_clause(part)} AND time >= {int(start_ms)}ms"
            # last(*) names the fields (InfluxQL cannot list a series' field keys), but
            # stamps every column with the range's start: one last() per field for the times.
            rows = self._select(
                f'SELECT last(*) FROM {quote_ident(MEASUREMENT)} WHERE {where} GROUP BY "device_id"'
            )
            names_of = {s["tags"]["device_id"]: _named_fields(s, limit) for s in rows}
            wanted = sorted(set().union(*names_of.values()))
            for first in range(0, len(wanted), STATEMENTS_PER_REQUEST):
                names = wanted[first : first + STATEMENTS_PER_REQUEST]
                statements = ";".join(
                    f"SELECT last({quote_ident(n)}::field) FROM {quote_ident(MEASUREMENT)} "
                    f'WHERE {where} GROUP BY "device_id"'
                    for n in names
                )
                for name, result in zip(names, self._query(statements), strict=True):
                    for series in result.get("series", []):
                        device = series["tags"]["device_id"]
                        ts, value = series["values"][0][:2]
                        if value is not None and name in names_of.get(device, ()):
                            found[device][name] = (int(ts), _value(value, "last"))
        return {device: dict(sorted(fields.items())) for device, fields in found.items()}

    def marks(self, device_id: str, start_ms: int, stop_ms: int) -> list[ReadingMark]:
        return self.marks_by_device([device_id], start_ms, stop_ms)[device_id]

    def marks_by_device(self, device_ids, start_ms, stop_ms):
        names = (RECEIVED_FIELD, BOOT_FIELD, SEQ_FIELD, DROPPED_FIELD)
        selectors = ", ".join(f"{quote_ident(n)}::field" for n in names)
        marks: dict[str, list[ReadingMark]] = {d: [] for d in device_ids}
        for part in _slices(device_ids):
            rows = self._select(
                f"SELECT {selectors} FROM {quote_ident(MEASUREMENT)} "
                f"WHERE {_devices_clause(part)} AND time >= {int(start_ms)}ms "
                f'AND time < {int(stop_ms)}ms GROUP BY "device_id"'
            )
            for series in rows:
                found = marks[series["tags"]["device_id"]]
                for ts, _received, boot, seq, dropped in series.get("values", []):
                    found.append(ReadingMark(int(ts), _int(boot), _int(seq), _int(dropped)))
        return marks

    # ---- plumbing ----------------------------------------------------------------------

    def _query(self, q: str, use_db: bool = True) -> list[dict]:
        params = {"q": q, "epoch": "ms"}
        if use_db:
            params["db"] = self.database
        try:
            response = self.http.get("/query", params=params)
        except httpx.HTTPError as error:
            raise TimeSeriesUnavailable(f"InfluxDB unreachable: {error}") from error
        if response.status_code >= 500:
            raise TimeSeriesUnavailable(f"InfluxDB query failed: {_error_text(response)}")
        try:
            body = response.json()
        except ValueError:
            # InfluxDB cannot write an infinite aggregate (a mean whose sum overflowed) as
            # JSON and sends its encoder's error as text instead.
            raise QueryError(
                f"InfluxDB could not answer this query: {response.text.strip()[:200]}"
            ) from None
        if "error" in body:
            raise QueryError(body["error"])
        return body.get("results", [])

    def _select(self, q: str, use_db: bool = True) -> list[dict]:
        results = self._query(q, use_db)
        if results and "error" in results[0]:
            raise QueryError(results[0]["error"])
        return results[0].get("series", []) if results else []

    def _post_query(self, q: str) -> None:
        try:
            response = self.http.post("/query", data={"q": q})
        except httpx.HTTPError as error:
            raise TimeSeriesUnavailable(f"InfluxDB unreachable: {error}") from error
        if response.status_code >= 300:
            raise TimeSeriesUnavailable(f"InfluxDB refused {q!r}: {_error_text(response)}")
        for result in response.json().get("results", []):
            if "error" in result:
                raise TimeSeriesUnavailable(f"InfluxDB refused {q!r}: {result['error']}")

    def close(self) -> None:
        self.http.close()


def _as_floats(point: Point) -> Point:
    """The point as written: values as floats (see the module docstring), marks as
    integers beside them under their stored names. The payload contract already made
    the pipeline's numbers floats, so only another writer's int is converted here."""
    fields = {
        name: value if isinstance(value, float | bool) else float(value)
        for name, value in point.fields.items()
    }
    return replace(point, fields={**fields, **point.marks.stored()})


def _value(value, agg: str | None) -> Value:
    if isinstance(value, bool):
        return value
    if agg == "count":
        return int(value)
    return float(value)


def _int(value) -> int | None:
    return None if value is None else int(value)


def _error_text(response: httpx.Response) -> str:
    try:
        return response.json().get("error", response.text)
    except ValueError:
        return response.text.strip() or response.reason_phrase
