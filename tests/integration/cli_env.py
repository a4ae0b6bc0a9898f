"""Shared by the CLI credential tests: a clean environment for a drivesync child process, and a
stand-in browser that follows the emulator's consent redirect (an HTTP client, not a mock)."""
from __future__ import annotations

import os
import sys
import textwrap


def env_for(tmp_path, emu, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "DRIVESYNC_", "CLOUDSDK_", "GCE_", "BROWSER", "SSH_"))}
    env.update(DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"), DRIVESYNC_STATE_DIR=str(tmp_path / "state"),
               CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), DRIVESYNC_API_URL=emu.url,
               GCE_METADATA_DETECT_RETRIES="1", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    env.update(extra)
    return env


def browser_program(tmp_path) -> str:
    path = tmp_path / "fake-browser"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import sys, httpx
        with httpx.Client(follow_redirects=True, timeout=30) as c:
            c.get(sys.argv[1]).raise_for_status()
    """))
    path.chmod(0o755)
    return str(path)
