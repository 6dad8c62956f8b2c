"""OTA rollouts through `fieldline simulate --devices 200 --faults --rollout` on the real
stack (issue 15, docs/ota.md): virtual devices run the SDK's Updater and the board's
loader (device/loader.py). A good bundle with a 10% canary completes on every device; a
bundle whose app raises at import halts after the canary, every canary device rolled
back by itself and the rest never offered. No reading is lost through either."""

from __future__ import annotations

import re
import subprocess
import sys

from fieldline_provision.bundle import build_bundle, make_bundle
from tests.demo.test_simulate import personal_token
from tests.pipeline.conftest import ALL

DEVICES = 200
BROKEN_APP = b"raise RuntimeError('this app is broken at import')\n"


def simulate(pipeline, token: str, *bundles) -> str:
    command = [
        sys.executable, "-m", "fieldline_backend.cli", "simulate",
        "--api", pipeline.running.base_url, "--token", token,
        "--devices", str(DEVICES), "--rate", "0.5", "--duration", "15",
        "--faults", "--cleanup", "--canary", "0.1", "--rollout-timeout", "240",
    ]  # fmt: skip
    for bundle in bundles:
        command += ["--rollout", str(bundle)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]  # 0: every sent reading was read back
    assert re.search(r"all \d+ sent readings found through the API", output), output[-5000:]
    return output


def outcomes(output: str) -> list[tuple[str, dict]]:
    found = re.findall(r"^rollout ro-\S+: (\w+)[^\n]* after [\d.]+ s: ([^\n]*)", output, re.M)
    return [
        (state, {name: int(n) for name, n in re.findall(r"(\w+) (\d+)", counts)})
        for state, counts in found
    ]


APP_FILES = ("app.py", "sensors.py", "status_led.py")


def app_bundle(version: str, app: bytes | None = None):
    """An update of the firmware app (source: virtual devices import it on CPython); the
    SDK stays. The rig tests roll out whole SDK + app bundles."""
    installed, _ = build_bundle(version, mpy="none")
    files = [(f.path, f.data) for f in installed.files if f.path in APP_FILES]
    return make_bundle(version, None, [(p, app if app and p == "app.py" else d) for p, d in files])


def test_broken_bundle_halts_after_the_canary_then_a_good_one_completes(start_pipeline, tmp_path):
    """One run of 200 devices with faults, two rollouts one after the other."""
    broken, good = tmp_path / "broken.tar", tmp_path / "good.tar"
    broken.write_bytes(app_bundle("99.0.1", BROKEN_APP).to_tar())
    good.write_bytes(app_bundle("99.0.2").to_tar())
    with start_pipeline(ALL) as pipeline:
        output = simulate(pipeline, personal_token(pipeline), broken, good)
    print(re.findall(r"^(?:rollout ro-|summary: )[^\n]*", output, re.M))  # the numbers
    (first, first_counts), (second, second_counts) = outcomes(output)
    canary = DEVICES // 10
    # The broken app raised at import on every canary device, which rolled it back by
    # itself; the rest were never offered it.
    assert first == "halted", output[-3000:]
    assert first_counts == {"rolled_back": canary, "queued": DEVICES - canary}, output[-3000:]
    # The next bundle reaches every device, the rolled-back canaries too.
    assert second == "completed", output[-3000:]
    assert second_counts == {"confirmed": DEVICES}, output[-3000:]
