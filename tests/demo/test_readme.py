"""Tried as a new user would: the README's first command, alone, in a fresh data dir,
brings up the demo, and every `curl` line of the guide it prints works as printed.

The command runs exactly as written in the README (scripts/demo.sh: install into .venv,
then `fieldline demo`). Only the environment differs from a fresh laptop: the data dir
and the two ports come from FIELDLINE_DATA_DIR / _HTTP_PORT / _MQTT_PORT, because this
machine's own Mosquitto already holds port 1883.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

import httpx

from tests.demo.process import ROOT, DemoProcess, clean_env, wait_until
from tests.support.servers import free_port


def first_readme_command() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "the README has no ```sh block"
    commands = [
        line.strip()
        for line in block.group(1).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return commands[0]


def run_curl(line: str) -> object:
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{line}\n-> exit {done.returncode}: {done.stderr}"
    try:
        body = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"{line}\n-> not JSON: {done.stdout[:300]}") from None
    assert not (isinstance(body, dict) and "detail" in body), f"{line}\n-> {body}"
    return body


def test_readme_first_command_brings_up_the_demo_and_its_curl_lines_work(tmp_path):
    assert shutil.which("curl"), "curl is not installed; the guide's examples need it"
    command = first_readme_command()
    assert command == "./scripts/demo.sh", f"the README's first command is now {command!r}"
    data = tmp_path / "fresh"
    env = clean_env(
        FIELDLINE_DATA_DIR=str(data),
        FIELDLINE_HTTP_PORT=str(free_port()),
        FIELDLINE_MQTT_PORT=str(free_port()),
    )
    demo = DemoProcess(shlex.split(command), env=env, cwd=ROOT)
    try:
        guide = demo.wait_for_guide(300)  # includes the install step
        assert str(data) in guide, guide
        curls = demo.curl_lines()
        assert len(curls) >= 3, guide
        console = re.search(r"^\s*web console (http://\S+/)", guide, re.MULTILINE)
        if console:  # named only when this build serves one
            page = httpx.get(console.group(1), timeout=30, follow_redirects=True)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]

        def every_curl_answers_with_data():
            bodies = [run_curl(line) for line in curls]
            empty = [line for line, body in zip(curls, bodies, strict=True) if _empty(body)]
            return not empty, empty

        # At --speed 1 the first readings are stored within seconds of the guide.
        wait_until(every_curl_answers_with_data, 30, "data from every curl line", interval=1)
        code, seconds = demo.interrupt()
        assert code == 0, demo.output
        assert seconds < 5, seconds
    finally:
        demo.kill()


def _empty(body) -> bool:
    """A device list, a telemetry answer or a status that holds nothing yet. The alert
    history may be empty this early (the rules need their `for`)."""
    if isinstance(body, list):
        return False
    if "fields" in body:
        return not any(body["fields"].values())
    if "readings_last_hour" in body:
        return not body["readings_last_hour"]
    return False
