"""Start a local, headless Label Studio server (for trying the bridge, for tests and docs)."""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["LabelStudioServer", "free_port"]

_STARTED = re.compile(r"Starting development server at (http://[^\s/]+:(\d+))/")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudioServer:
    """A Label Studio server on this machine, started headless and offline.

    The server runs ``label-studio start`` from the installed ``label-studio`` package with
    its data (an SQLite database and uploads) in ``data_dir``, a user ``username`` and the
    API token ``token``, on a free port of 127.0.0.1. Error reporting, analytics and the
    version check are switched off (Label Studio then needs no network); sign-up without an
    invitation link is disabled.

    Start-up cost: the first start on an empty ``data_dir`` applies Label Studio's database
    migrations (about a minute on 2 CPU cores); pass ``template_dir``, a data directory
    of an earlier server that was stopped, to start from a copy of it in seconds.

    Parameters
    ----------
    data_dir : path-like
        Where the server keeps its data; created if missing.
    token : str, default=None
        The user's API token (40 characters); default a random one (see ``token``).
    username : str, default="admin@example.com"
    password : str, default=None
        Default a random one.
    port : int, default=None
        Default a free port. Label Studio moves to the next port silently when the port is
        busy; the server's actual address is read from its log and is ``url``.
    template_dir : path-like, default=None
        A data directory to copy into an empty ``data_dir`` before starting.
    executable : path-like, default=None
        The ``label-studio`` script; default the one next to this Python.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>`` once started.
    token : str
    startup_seconds : float
        Wall-clock seconds from launch to ``/health`` answering ``UP``.

    Examples
    --------
    >>> with LabelStudioServer("ls-data") as server:                   # doctest: +SKIP
    ...     print(server.url, server.token)
    """

    def __init__(
        self,
        data_dir,
        *,
        token=None,
        username="admin@example.com",
        password=None,
        port=None,
        template_dir=None,
        executable=None,
    ):
        self.data_dir = Path(data_dir)
        self.token = token or secrets.token_hex(20)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.port = port
        self.template_dir = template_dir
        self.executable = executable
        self.url = None
        self.process = None
        self.startup_seconds = None

    def _command(self):
        exe = self.executable or Path(sys.executable).with_name("label-studio")
        if not Path(exe).exists():
            found = shutil.which("label-studio")
            if found is None:
                raise FileNotFoundError(
                    f"no label-studio executable at {exe} nor on PATH; install the extra: "
                    "pip install 'skdynal[labelstudio]' label-studio"
                )
            exe = found
        return [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1"]

    def start(self, timeout=240.0):
        """Launch the server and wait until ``/health`` says ``UP``; return ``self``."""
        if self.process is not None:
            raise RuntimeError("this server is already started.")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.template_dir is not None and not any(self.data_dir.iterdir()):
            shutil.copytree(self.template_dir, self.data_dir, dirs_exist_ok=True)
        port = self.port or free_port()
        env = dict(os.environ)
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            HOME=str(self.data_dir),
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            LATEST_VERSION_CHECK="false",
            COLLECT_ANALYTICS="false",
            LABEL_STUDIO_USERNAME=self.username,
            LABEL_STUDIO_PASSWORD=self.password,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        )
        self._log_path = self.data_dir / "server.log"
        log = open(self._log_path, "ab")  # the child writes to it
        start = time.monotonic()
        self.process = subprocess.Popen(
            [*self._command(), "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait(port, start, timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - start
        return self

    def _log_tail(self, n=2000):
        try:
            return self._log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _wait(self, port, start, timeout):
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"label-studio exited with status {self.process.returncode} while "
                    f"starting; the end of its log:\n{self._log_tail()}"
                )
            found = _STARTED.findall(self._log_tail(20000))
            url = found[-1][0] if found else f"http://127.0.0.1:{port}"
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                    if json.loads(reply.read()).get("status") == "UP":
                        self.url = url
                        return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(
            f"label-studio did not answer /health within {timeout:.0f} s; the end of its "
            f"log:\n{self._log_tail()}"
        )

    def stop(self, timeout=20.0):
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc):
        self.stop()
