from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_PDFS = FIXTURES / "pdf"


def corpus_dir() -> Path:
    """The development corpus beside the checkout (../shared/corpus), or $SCICURATE_CORPUS."""
    env = os.environ.get("SCICURATE_CORPUS")
    return Path(env) if env else ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if not (path / "pdf").is_dir():
        pytest.skip(f"development corpus not found at {path} (set SCICURATE_CORPUS to run corpus tests)")
    return path
