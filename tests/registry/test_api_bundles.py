"""Issue 15, part 3: OTA bundles through the public API on both stacks (PostgreSQL +
Mosquitto, SQLite + the embedded broker) with the real devices service: an upload is
checked whole by the bundle format's own reader (422 with the reason: not a tar, no
manifest, a file missing, a hash or size that does not match, a bad path or version),
bounded before it is read (413, with and without Content-Length), stored once (200 the
second time), kept apart per owner, and not deleted while a running rollout offers it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from fieldline_provision.bundle import MAX_BUNDLE_BYTES, make_bundle
from tests.registry.test_api_config import register

APP = b"def run():\n    return 1\n"


def a_bundle(version: str = "1.4.0", app: bytes = APP) -> bytes:
    """The tar of a bundle of app.py (and the version.json make_bundle adds)."""
    return make_bundle(version, None, [("app.py", app)]).to_tar()


def members(tar: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle_id(tar: bytes) -> str:
    return hashlib.sha256(members(tar)["manifest.json"]).hexdigest()


def upload(http, tar: bytes):
    return http.post(
        "/api/v1/bundles", content=tar, headers={"Content-Type": "application/octet-stream"}
    )


def uploaded(http, tar: bytes | None = None) -> dict:
    answer = upload(http, tar or a_bundle())
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def test_a_bundle_is_stored_once_and_listed(registry_stack):
    with registry_stack.signed_in() as http:
        tar = a_bundle("1.4.0")
        first = upload(http, tar)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["id"] == bundle_id(tar) and body["version"] == "1.4.0"
        assert body["mpy"] is None and body["size"] == len(tar)
        paths = {f["path"]: f for f in body["files"]}
        assert set(paths) == {"app.py", "version.json"}
        assert paths["app.py"] == {
            "path": "app.py",
            "size": len(APP),
            "sha256": hashlib.sha256(APP).hexdigest(),
        }
        again = upload(http, tar)
        assert again.status_code == 200 and again.json() == body, again.text
        newer = uploaded(http, a_bundle("1.5.0"))
        listed = http.get("/api/v1/bundles").json()
        assert [b["id"] for b in listed] == [newer["id"], body["id"]]  # newest first
        assert http.get(f"/api/v1/bundles/{body['id']}").json() == body
        assert http.delete(f"/api/v1/bundles/{body['id']}").status_code == 204
        assert http.get(f"/api/v1/bundles/{body['id']}").status_code == 404
        assert http.delete(f"/api/v1/bundles/{body['id']}").status_code == 404


def _tampered(change) -> bytes:
    files = members(a_bundle())
    manifest = json.loads(files["manifest.json"])
    change(files, manifest)
    if "manifest.json" in files:
        files["manifest.json"] = json.dumps(manifest).encode()
    return tar_of(files)


def _set(key, value):
    return lambda files, manifest: manifest.__setitem__(key, value)


def _first_file(key, value):
    return lambda files, manifest: manifest["files"][0].__setitem__(key, value)


def _extra_file(path: str, data: bytes = b"x = 1\n"):
    def change(files, manifest):
        files[path] = data
        manifest["files"].append(
            {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )

    return change


def _drop_member(name: str):
    return lambda files, manifest: files.pop(name)


BAD = {
    "not a tar": lambda: b"this is not a tar file" * 10,
    "no manifest": lambda: _tampered(_drop_member("manifest.json")),
    "a file missing": lambda: _tampered(_drop_member("app.py")),
    "a hash that does not match": lambda: _tampered(_first_file("sha256", "0" * 64)),
    "a size that does not match": lambda: _tampered(_first_file("size", 3)),
    "a bad version": lambda: _tampered(_set("version", "1.x")),
    "a path above the bundle": lambda: _tampered(_extra_file("../evil.py")),
    "main.py": lambda: _tampered(_extra_file("main.py")),
    "not a .py/.mpy/.json": lambda: _tampered(_extra_file("app.sh")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_what_is_not_a_bundle_is_422_with_the_reason(registry_stack, case):
    with registry_stack.signed_in() as http:
        answer = upload(http, BAD[case]())
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["detail"], answer.text
        assert http.get("/api/v1/bundles").json() == []


def test_the_api_bounds_bundles_as_the_format_does():
    from fieldline_backend.devices.ota_schemas import BUNDLE_MAX_BYTES

    assert BUNDLE_MAX_BYTES == MAX_BUNDLE_BYTES


def test_a_bundle_over_the_bound_is_413_before_it_is_read(registry_stack):
    with registry_stack.signed_in() as http:
        answer = upload(http, b"\0" * (MAX_BUNDLE_BYTES + 1))
        assert answer.status_code == 413, answer.text

        def streamed():  # no Content-Length: counted as it arrives
            for _ in range(MAX_BUNDLE_BYTES // 65536 + 2):
                yield b"\0" * 65536

        answer = http.post(
            "/api/v1/bundles",
            content=streamed(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 413, answer.text
        assert http.get("/api/v1/bundles").json() == []


def test_owners_are_kept_apart(registry_stack):
    with registry_stack.signed_in() as alice, registry_stack.signed_in() as mallory:
        tar = a_bundle()
        mine = uploaded(alice, tar)
        assert mallory.get(f"/api/v1/bundles/{mine['id']}").status_code == 404
        assert mallory.delete(f"/api/v1/bundles/{mine['id']}").status_code == 404
        assert mallory.get("/api/v1/bundles").json() == []
        theirs = upload(mallory, tar)  # the same tar: stored for them too, as new
        assert theirs.status_code == 201, theirs.text
        assert mallory.delete(f"/api/v1/bundles/{mine['id']}").status_code == 204
        assert alice.get(f"/api/v1/bundles/{mine['id']}").json() == mine


def test_a_bundle_a_running_rollout_offers_is_not_deleted(registry_stack):
    with registry_stack.signed_in() as http:
        bundle = uploaded(http)
        device = register(http)
        rollout = http.post(
            "/api/v1/rollouts", json={"bundle_id": bundle["id"], "devices": [device["id"]]}
        )
        assert rollout.status_code == 201, rollout.text
        answer = http.delete(f"/api/v1/bundles/{bundle['id']}")
        assert answer.status_code == 409 and "cancel" in answer.text, answer.text
        cancel = http.post(f"/api/v1/rollouts/{rollout.json()['id']}/cancel")
        assert cancel.json()["state"] == "cancelled", cancel.text
        assert http.delete(f"/api/v1/bundles/{bundle['id']}").status_code == 204


@pytest.mark.parametrize(
    "path",
    ["/api/v1/bundles/xyz", "/api/v1/bundles/" + "A" * 64, "/api/v1/rollouts/ro-1"],
)
def test_ids_that_cannot_exist_are_422(registry_stack, path):
    with registry_stack.signed_in() as http:
        assert http.get(path).status_code == 422
