"""The shipped service unit passes `systemd-analyze verify` and keeps its sandboxing."""
from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "hotline-bridge.service"
INSTALLED = "/opt/hotline-bridge/.venv/bin/hotline-bridge"


def test_unit_verifies(tmp_path):
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: scripts/test installs Debian's systemd"
    # verify checks that ExecStart exists: point it at this checkout's entry point.
    entry_point = Path(sys.executable).parent / "hotline-bridge"
    assert entry_point.exists()
    unit = tmp_path / "hotline-bridge.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(entry_point)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_unit_runs_sandboxed_as_its_own_user_with_secrets_from_a_file():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["User"] == "hotline-bridge"
    assert service["StateDirectory"] == "hotline-bridge"
    assert service["EnvironmentFile"] == "/etc/hotline-bridge/secrets.env"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes"}.items():
        assert service[key] == value, key
    assert "run -c /etc/hotline-bridge/config.toml" in service["ExecStart"]
