"""A real Label Studio server for the bridge's tests (skipped without the extra)."""

import shutil
import sys
from pathlib import Path

import pytest

_STARTUPS = []


def _label_studio_executable():
    here = Path(sys.executable).with_name("label-studio")
    return str(here) if here.exists() else shutil.which("label-studio")


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory):
    """A Label Studio started from the installed package: free port, throwaway SQLite data
    folder, known token. Skips with a reason without the ``labelstudio`` extra."""
    pytest.importorskip(
        "label_studio_sdk", reason="the labelstudio extra is not installed (label-studio-sdk)"
    )
    if _label_studio_executable() is None:
        pytest.skip("the label-studio server is not installed (pip install label-studio)")
    from skdynal.labelstudio import LabelStudioServer

    server = LabelStudioServer(
        tmp_path_factory.mktemp("label-studio"),
        token="0123456789abcdef0123456789abcdef01234567",
        executable=_label_studio_executable(),
    )
    server.start()
    _STARTUPS.append(server.startup_seconds)
    yield server
    server.stop()


@pytest.fixture
def client(ls_server):
    from skdynal.labelstudio import connect

    return connect(ls_server.url, ls_server.token)


def pytest_terminal_summary(terminalreporter):
    """The server's start-up cost, in every report (also under ``-q``): CI's log shows it."""
    for seconds in _STARTUPS:
        terminalreporter.write_line(
            f"Label Studio (first start, migrations included) started in {seconds:.1f} s"
        )
