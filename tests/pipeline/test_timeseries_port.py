"""The time-series port is complete: every method the services call on the store is
declared on the Protocol, the services are typed on the port, there is one DropReport,
and no adapter module is imported outside its package. Checked by reading the code, so
a new call on an adapter-only method fails here before it fails in production."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import fieldline_backend
from fieldline_backend.infra import timeseries

BACKEND = Path(fieldline_backend.__file__).parent
# The services that hold a time-series store, and what they call it.
STORE_USERS = ["storage", "monitor"]
ADAPTER_MODULES = {"influx", "sqlite", "lineprotocol"}


def _is_store(node: ast.expr) -> bool:
    """`store`, `self.store`, `storage.store`, `_storage(request).store`, ..."""
    if isinstance(node, ast.Name):
        return node.id == "store"
    return isinstance(node, ast.Attribute) and node.attr == "store"


def store_methods_used() -> dict[str, list[str]]:
    """{method: [file:line, ...]} of every attribute taken from a store in the services."""
    used: dict[str, list[str]] = {}
    for service in STORE_USERS:
        for path in sorted((BACKEND / service).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and _is_store(node.value):
                    where = f"{path.relative_to(BACKEND)}:{node.lineno}"
                    used.setdefault(node.attr, []).append(where)
    return used


def _classes(protocol) -> list[type]:
    return [k for k in protocol.__mro__ if k not in (object, typing.Protocol, typing.Generic)]


def declared(protocol) -> set[str]:
    """Its methods."""
    return {
        name
        for klass in _classes(protocol)
        for name, value in vars(klass).items()
        if callable(value) and not name.startswith("_")
    }


def attributes(protocol) -> set[str]:
    """Its declared attributes (`parallel_reads: bool`)."""
    return {name for klass in _classes(protocol) for name in vars(klass).get("__annotations__", {})}


def test_every_store_method_the_services_use_is_declared_on_the_port():
    used = store_methods_used()
    assert {"write", "query", "marks"} <= set(used), f"the scan found too little: {used}"
    port = timeseries.TimeSeriesStore
    missing = {m: where for m, where in used.items() if m not in declared(port) | attributes(port)}
    assert missing == {}, f"called on the store but not declared on TimeSeriesStore: {missing}"


def test_the_writer_and_reader_halves_make_up_the_store():
    writer, reader = declared(timeseries.TimeSeriesWriter), declared(timeseries.TimeSeriesReader)
    assert writer | reader == declared(timeseries.TimeSeriesStore)
    assert {"write", "write_status", "write_drops", "write_rejected"} <= writer
    assert {"marks", "statuses", "drop_reports", "rejected", "page", "latest"} <= reader


def test_each_adapter_implements_every_declared_method_with_its_parameters():
    import inspect

    from fieldline_backend.infra.timeseries.influx import InfluxStore
    from fieldline_backend.infra.timeseries.sqlite import SQLiteStore

    for name in sorted(declared(timeseries.TimeSeriesStore)):
        expected = list(inspect.signature(getattr(timeseries.TimeSeriesStore, name)).parameters)
        for adapter in (InfluxStore, SQLiteStore):
            method = getattr(adapter, name, None)
            assert method is not None, f"{adapter.__name__} lacks {name}"
            got = list(inspect.signature(method).parameters)
            assert got == expected, f"{adapter.__name__}.{name}: expected {expected}, got {got}"


def test_each_adapter_sets_every_declared_attribute():
    from fieldline_backend.infra.timeseries.influx import InfluxStore
    from fieldline_backend.infra.timeseries.sqlite import SQLiteStore

    assert attributes(timeseries.TimeSeriesStore) == {"parallel_reads"}
    for adapter in (InfluxStore, SQLiteStore):
        assert isinstance(getattr(adapter, "parallel_reads", None), bool), adapter.__name__


def test_the_services_hold_the_port_not_an_object():
    from fieldline_backend.monitor.runner import Monitor
    from fieldline_backend.storage.component import Storage
    from fieldline_backend.storage.service import StorageService

    got = {
        "Storage.store": typing.get_type_hints(Storage)["store"],
        "StorageService.store": typing.get_type_hints(StorageService.__init__)["store"],
        "Monitor.store": typing.get_type_hints(Monitor.__init__)["store"],
    }
    ports = (timeseries.TimeSeriesStore, timeseries.TimeSeriesReader)
    assert {k: v for k, v in got.items() if v not in ports} == {}


def test_one_drop_report_class():
    classes = []
    for path in sorted(BACKEND.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name == "DropReport":
                classes.append(str(path.relative_to(BACKEND)))
    assert classes == ["infra/timeseries/__init__.py"]


def test_no_adapter_module_is_imported_outside_the_timeseries_package():
    outside = []
    for path in sorted(BACKEND.rglob("*.py")):
        if path.parent == BACKEND / "infra" / "timeseries":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[-2:-1] == ["timeseries"] and parts[-1] in ADAPTER_MODULES:
                    outside.append(f"{path.relative_to(BACKEND)}:{node.lineno} {node.module}")
    assert outside == []


def test_the_contract_suite_runs_every_declared_method():
    """tests/pipeline/test_timeseries_contract.py calls each one on both adapters (its
    `store` fixture is parametrized over InfluxDB and SQLite)."""
    suite = Path(__file__).with_name("test_timeseries_contract.py").read_text()
    called = {
        node.func.attr
        for node in ast.walk(ast.parse(suite))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("store", "adapter")
    }
    assert sorted(declared(timeseries.TimeSeriesStore) - called) == []
