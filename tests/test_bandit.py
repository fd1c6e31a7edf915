"""Static analysis: bandit finds no high-severity issue in the package.

Lower severities are reviewed by hand (see docs/security.md): today they are
``assert`` used for type narrowing, error messages that mention passwords, and
``Markup`` around the two-factor QR code, an SVG we draw ourselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.constants import ROOT

pytestmark = pytest.mark.once  # static analysis of the source: the same on either backend (tests/run.sh)


def test_bandit_finds_no_high_severity_issue():
    bandit = Path(sys.executable).parent / "bandit"
    assert bandit.exists(), "bandit is missing: pip install -r requirements-dev.txt"
    result = subprocess.run(
        [str(bandit), "-r", "chatroom", "-lll", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"bandit found high-severity issues:\n{result.stdout}\n{result.stderr}"
