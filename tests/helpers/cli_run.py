"""Running the real CLI in a subprocess, and checking that a failure is one clean line."""

from __future__ import annotations

import subprocess
import sys


def run_cli(env, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_error_line(proc) -> str:
    """The only stderr line of a failed command, which must be ``error: ...``."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
