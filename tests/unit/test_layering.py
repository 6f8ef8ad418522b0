"""The package's layers, as the README draws them, hold: import-linter's contracts in pyproject.toml.

- the engine (ivr.flow) and the config toolkit do no I/O and import no channel;
- channels (voice, USSD, SMS), the agent desktop, metrics and the live configuration never import each other;
- runtime (local Asterisk, Kannel) never imports a channel;
- nothing below the composition root imports it, nothing but ``__main__`` imports the CLI.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_every_import_linter_contract_is_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[dev]'")
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
