"""Run every command of docs/labeling_with_people.md, in order, against a real server.

Where the page asks a person to label the batch in the browser, the test posts the
annotations through Label Studio's API with the digits' true labels.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import _label_studio_executable

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "labeling_with_people.md"


def bash_blocks():
    return re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_install_command_is_the_one_ci_runs():
    install = bash_blocks()[0].strip()
    assert "label-studio==1.23.2" in install and '".[tests,labelstudio]"' in install
    assert "lsvenv/bin/pip install -q -c constraints-ci.txt" in install
    ci = (REPO / ".ci" / "run").read_text()
    assert '-e ".[tests,labelstudio]" label-studio==1.23.2' in ci


def _localise(command, port, venv_bin):
    command = command.replace("8080", str(port))
    command = command.replace("lsvenv/bin/", f"{venv_bin}/")
    return command


def _label_pending(url, token, project):
    from sklearn.datasets import load_digits

    from skdynal.labelstudio import connect

    _, y = load_digits(return_X_y=True)
    client = connect(url, token)
    done = 0
    tab = [v for v in client.views.list(project=project) if v.data["title"].startswith("skdynal")]
    for task in client.tasks.list(project=project, view=tab[0].id, fields="all"):
        label = str(int(y[task.data["pool_id"]]))
        region = {"from_name": "label", "to_name": "item", "type": "choices"}
        client.annotations.create(id=task.id, result=[{**region, "value": {"choices": [label]}}])
        done += 1
    return done


def test_every_command_of_the_page(tmp_path):
    pytest.importorskip(
        "label_studio_sdk", reason="the labelstudio extra is not installed (label-studio-sdk)"
    )
    if _label_studio_executable() is None:
        pytest.skip("the label-studio server is not installed (pip install label-studio)")
    from skdynal.labelstudio import free_port

    blocks = bash_blocks()
    assert len(blocks) == 5
    port = free_port()
    venv_bin = str(Path(sys.executable).parent)
    assert shutil.which("skdynal", path=venv_bin), "skdynal is not installed in this venv"
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"]}
    env["PYTHONPATH"] = str(REPO)
    # block 1 (install) is what the test environment was built with; block 2 starts it
    server = subprocess.Popen(
        ["bash", "-c", _localise(blocks[1], port, venv_bin) + "\nwait"],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    token = "0123456789abcdef0123456789abcdef01234567"
    url = f"http://127.0.0.1:{port}"
    try:
        start = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                    if b"UP" in reply.read():
                        break
            except OSError:
                pass
            assert time.monotonic() - start < 240, (tmp_path / "ls.log").read_text()[-3000:]
            time.sleep(0.5)
        took = time.monotonic() - start
        sys.stderr.write(f"\nthe page's Label Studio started in {took:.1f} s\n")

        def run(block):
            out = subprocess.run(
                ["bash", "-c", _localise(block, port, venv_bin)],
                cwd=tmp_path,
                env={**env, "LABEL_STUDIO_API_KEY": token},
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0, out.stderr[-3000:]
            return out.stdout

        first = run(blocks[2])
        assert "created project 1" in first
        assert "imported 200 task(s)" in first and "10 pending" in first
        assert _label_pending(url, token, 1) == 10
        second = run(blocks[3])
        assert "10 label(s) committed" in second and "queried round 1" in second
        assert _label_pending(url, token, 1) == 10
        again = run(blocks[3])  # "label them and run the command again"
        assert "queried round 2" in again
        assert _label_pending(url, token, 1) == 10
        last = run(blocks[4])
        assert "the stopping rule AnyRule says stop after 30 labels" in last
        assert last.splitlines()[0].endswith("STOP")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
