"""A real RTSP camera for tests: runs tests/helpers/rtsp_server.py under the system python.

    from rtsp import RtspServer, rtsp_available

    if (reason := rtsp_available()):
        pytest.skip(reason)
    with RtspServer({"cam": vtest_path}, user="u", password="p") as srv:
        url = srv.url("cam")            # rtsp://u:p@127.0.0.1:<port>/cam
        srv.kill(); srv.restart()       # a camera outage, then the camera is back on the same port

Each mount streams its file looped forever in real time as H.264 over RTP, shared by all
clients. The server needs Debian's GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0,
python3-gi and the GStreamer plugins base/good/ugly/bad/libav), importable from
/usr/bin/python3 -- not from the venv, which is why it runs as a separate process.
"""

from __future__ import annotations

import atexit
import functools
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().with_name("rtsp_server.py")
NEEDED_ELEMENTS = ("appsrc", "appsink", "decodebin", "videoconvert", "x264enc", "rtph264pay")

_PROBE = f"""
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
print(" ".join(e for e in {NEEDED_ELEMENTS!r} if Gst.ElementFactory.find(e) is None))
"""

_LIVE: set[subprocess.Popen] = set()


@atexit.register
def _reap_all() -> None:  # never leave a server behind when a test forgets to stop it
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _LIVE.clear()


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"):
        env.pop(var, None)
    return env


@functools.lru_cache(maxsize=1)
def rtsp_available() -> str | None:
    """None when the RTSP test server can run here, else why not (for pytest.skip)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found (the RTSP test server needs the system python)"
    try:
        res = subprocess.run(
            [SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=60, env=_clean_env()
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {SYSTEM_PYTHON}: {e}"
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return (
            f"GStreamer RTSP server not importable from {SYSTEM_PYTHON} ({last}); install "
            "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-{base,good,ugly,bad} "
            "gstreamer1.0-libav"
        )
    missing = res.stdout.strip()
    if missing:
        return f"GStreamer elements missing for the RTSP test server: {missing}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """One rtsp_server.py process serving ``mounts`` (name -> video file) on 127.0.0.1."""

    def __init__(
        self,
        mounts: dict[str, Path | str],
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        fps: float | None = None,
    ) -> None:
        if not mounts:
            raise ValueError("at least one mount")
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        self.mounts = {name.strip("/"): Path(path) for name, path in mounts.items()}
        self.port = port
        self.user = user
        self.password = password
        self.fps = fps
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self.started_at: float | None = None  # time.monotonic() when READY came

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 30, attempts: int = 2) -> RtspServer:
        """Start the server and wait for READY. A start that fails (GStreamer's encoding
        pipeline has been seen to hang once in a while on a loaded machine) is retried, on a
        fresh port when none was given; the error names every attempt's log."""
        if self.running:
            raise RuntimeError(f"RTSP server already running on port {self.port}")
        for path in self.mounts.values():
            if not path.is_file():
                raise FileNotFoundError(path)
        chosen = self.port
        failures = []
        for _ in range(attempts):
            self.port = chosen if chosen is not None else free_port()
            try:
                return self._start_once(timeout)
            except RuntimeError as exc:
                failures.append(str(exc))
        raise RuntimeError("\n".join(f"attempt {i + 1}: {f}" for i, f in enumerate(failures)))

    def _start_once(self, timeout: float) -> RtspServer:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        if self.user is not None:
            cmd += ["--user", self.user, "--password", self.password]
        if self.fps is not None:
            cmd += ["--fps", str(self.fps)]
        self._stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=_clean_env()
        )
        self._proc = proc
        _LIVE.add(proc)
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    proc.send_signal(signal.SIGUSR1)  # the server dumps its threads' stacks
                    time.sleep(1.0)
                    self.kill()
                    raise RuntimeError(f"RTSP server not ready after {timeout:g} s:\n{self.stderr_text}")
                if sel.select(min(left, 0.2)):
                    chunk = os.read(proc.stdout.fileno(), 256)
                    if not chunk:  # stdout closed: it died
                        break
                    line += chunk
                elif proc.poll() is not None:
                    break
        if not line.startswith(b"READY "):
            proc.wait(timeout=5)
            self._forget()
            raise RuntimeError(
                f"RTSP server exited (rc={proc.returncode}) before READY:\n{self.stderr_text}"
            )
        self.port = int(line.split()[1])
        self.started_at = time.monotonic()
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 3 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL at once: the camera just disappears (no RTSP teardown, sockets reset)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def restart(self, timeout: float = 30) -> RtspServer:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start(timeout=timeout)

    def _forget(self) -> None:
        proc = self._proc
        _LIVE.discard(proc)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    # -- info --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    @property
    def stderr_text(self) -> str:
        """What the server wrote to stderr so far (its log)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def url(self, mount: str, with_credentials: bool = True) -> str:
        if self.port is None:
            raise RuntimeError("server has no port yet (call start())")
        auth = ""
        if with_credentials and self.user is not None:
            auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        return f"rtsp://{auth}127.0.0.1:{self.port}/{mount.strip('/')}"

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RtspServer(port={self.port}, mounts={sorted(self.mounts)}, {state})"
