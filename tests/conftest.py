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


# Word lists that make a tiny fastText recall model learnable (test_recall_pipeline, test_portable).
RECALL_WORDS = {
    ("physics", "physics.particle_physics"): "quark boson collider gluon hadron muon neutrino lepton meson "
                                             "baryon pion kaon detector luminosity jet decay",
    ("physics", "physics.condensed_matter"): "lattice phonon superconductor crystal magnon electron spin band "
                                             "fermi insulator topological exciton polaron gap doping",
    ("chemistry", ""): "reagent titration solvent catalyst molecule reaction yield ester",
    ("other", ""): "election football market recipe holiday film stock travel",
}


def recall_labels(prefix: str, n: int) -> list[dict]:
    """n labelled rows per (domain, taxonomy node) of RECALL_WORDS, with the node's path."""
    rows = []
    for (label, node), words in RECALL_WORDS.items():
        vocab = words.split()
        for i in range(n):
            text = " ".join(vocab[(i * 3 + k) % len(vocab)] for k in range(14))
            row = {"id": f"{prefix}-{label}-{node}-{i}", "text": text, "domain": [label]}
            if node:
                row["paths"] = {label: [label, node]}
            rows.append(row)
    return rows
