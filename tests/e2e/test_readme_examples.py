"""The README's examples, run as a newcomer would: every ```sh block, in order and as written, in one bash
session against a fresh home and a real `facewarden serve` started by the README itself.

What the harness adds and why: `set -euo pipefail`, and `curl` wrapped with `--fail-with-body` (so an HTTP error
fails the command instead of printing JSON nobody reads), and a marker line before each command (so the
output of each one can be checked and a failure names its command). ```console blocks are shown, not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED

README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
MARK = "@@@ command "
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --silent --show-error "$@"; }
trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT
"""


def readme_commands(text: str) -> list[str]:
    """The commands of the runnable blocks: continuation lines joined, blank and comment lines dropped."""
    commands: list[str] = []
    for lang, body in FENCE.findall(text):
        if lang not in ("sh", "bash"):
            continue
        pending = ""
        for line in body.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if not line.rstrip().endswith("\\"):
                commands.append(pending.rstrip("\n"))
                pending = ""
        assert not pending, f"a README block ends in a continuation line: {pending!r}"
    return commands


def test_the_readme_blocks_are_found() -> None:
    commands = readme_commands(README.read_text())
    assert any(c.startswith("KEY=$(facewarden init") for c in commands)
    assert any("/v1/audit/export" in c for c in commands) and any(c.startswith("facewarden enroll") for c in commands)
    # The liveness example needs a clip filmed for a random challenge: shown, not run.
    assert not any("/v1/liveness/sessions" in c for c in commands)
    # Headers with a space are quoted (issue 10: `-H Authorization:Bearer $X` split in two).
    assert not any(re.search(r"-H\s+[^\"'\s]*Authorization", c) for c in commands)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _outputs(stdout: str) -> dict[int, str]:
    parts = re.split(rf"^{MARK}(\d+)$", stdout, flags=re.M)
    return {int(parts[i]): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _json_of(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out[out.index("{"):])


def test_every_readme_example_runs_as_written(tmp_path: Path, shared_faces: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run `make system-deps` (the README's examples use it).")
    commands = readme_commands(README.read_text())
    script = PRELUDE + "".join(f"printf '\\n{MARK}{i}\\n'\n{cmd}\n" for i, cmd in enumerate(commands))
    (tmp_path / "readme.sh").write_text(script)
    # A newcomer's environment: no FaceWarden settings but the README's own; the virtualenv on the PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    env |= {"FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_PORT": str(_free_port()),
            "FACEWARDEN_SHARED": str(SHARED.resolve()), "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    work = tmp_path / "work"  # the files the examples write (log.pem, period.json, obama.json) land here
    work.mkdir()
    proc = subprocess.Popen(["bash", str(tmp_path / "readme.sh")], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # bash and the server it started, nothing else
        stdout, _ = proc.communicate()
        pytest.fail(f"the README examples did not finish in 400 s; last output:\n{stdout[-3000:]}")
    (tmp_path / "readme.out").write_text(stdout)  # kept for a look after a failure
    out = _outputs(stdout)
    failed = max(out) if out else 0
    assert proc.returncode == 0, (f"README command {failed} failed (exit {proc.returncode}):\n{commands[failed]}\n"
                                  f"--- its output:\n{out.get(failed, stdout)[-3000:]}")
    assert len(out) == len(commands)

    def output_of(*needles: str) -> list[str]:
        found = [out[i] for i, c in enumerate(commands) if all(n in c for n in needles)]
        assert found, needles
        return found

    enrolled = _json_of(output_of("/v1/subjects \\", "subject=obama")[0])
    assert enrolled["subject_credential"].startswith("fws_")
    operator_verify, device_verify = (_json_of(o) for o in output_of("/v1/subjects/obama/verify"))
    assert operator_verify["match"] is True and operator_verify["distance"] < operator_verify["threshold"]
    assert device_verify["match"] is True and device_verify.get("distance") is None  # a device gets no score
    identified = _json_of(output_of("/v1/identify")[0])
    names = {f["candidates"][0]["subject"] for f in identified["faces"] if f["candidates"]}  # and bystanders
    assert names == {"obama", "biden"}
    assert _json_of(output_of("/approve")[0])["result"]["versions"] == [2]  # rotated and the old KEK retired
    assert _json_of(output_of("/v1/audit/entries")[0])["entries"]
    assert output_of("audit verify-export")[0].endswith("OK")
    assert json.loads((work / "period.json").read_text())["entries"]
    cli_verify = _json_of(output_of("facewarden verify obama")[0])
    assert cli_verify["match"] is True
    cli_identify = _json_of(output_of("facewarden identify")[0])
    assert {f["candidates"][0]["subject"] for f in cli_identify["faces"] if f["candidates"]} == {"kit_harington",
                                                                                              "rose_leslie"}
    assert "device-unlock" in cli_identify["purposes_searched"]
    assert oct((work / "obama.json").stat().st_mode & 0o777) == "0o600"
    assert "OK: the log is intact." in output_of("facewarden audit verify")[-1]  # the CLI block's, after -export
    # The server the README started is gone with the script.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(env["FACEWARDEN_PORT"])), timeout=2):
        pass
