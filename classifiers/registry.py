"""Domain classifiers behind one registry, so `scicurate eval classify --classifier NAME` and the
pipelines find a model by name.

A classifier scores texts; it does not decide. `predict` returns one score per label and a
separate cheap step (the eval's `--threshold`, a pipeline's filter stage) turns scores into a
verdict, so thresholds change without re-running the model.

Registered: `recall-fasttext` (`classifiers/recall_fasttext.py`, the taxonomy-recall fastText
model) and `recall-smollm` (`classifiers/recall_llm.py`, a linear head on a frozen small causal
LM: SmolLM2-135M on CPU, any local model directory on GPU); `recall-annotator`
(`classifiers/refine.py`) scores one `recall_<domain>` prompt version as an LLM annotator. A module
that provides one calls `register_classifier` at import and appends itself to `CLASSIFIER_MODULES`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Callable, Sequence

from scicurate.config import ConfigError

# Modules that register classifiers when imported. Later issues append theirs here.
CLASSIFIER_MODULES: tuple[str, ...] = ("scicurate.classifiers.recall_fasttext", "scicurate.classifiers.refine",
                                       "scicurate.classifiers.recall_llm")


class DomainClassifier(ABC):
    """Texts in, one `{label: score}` dict per text out (higher = more likely that label).

    `name` identifies the model (and prompt version, for LLMs) in outputs; `labels` lists every
    label `predict` scores. `load()` is called once before the first `predict`, and is where
    heavy imports and model files are read: a missing model or package raises `ConfigError`
    saying what to install or configure. `predict` receives the whole list and batches inside.
    """

    name: str
    labels: tuple[str, ...]

    @abstractmethod
    def load(self) -> None:
        """Read the model; fail fast with `ConfigError` when it cannot be found."""

    @abstractmethod
    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One dict per text, in order, with a score for each of `self.labels`."""


ClassifierFactory = Callable[..., DomainClassifier]

_REGISTRY: dict[str, ClassifierFactory] = {}


def register_classifier(name: str, factory: ClassifierFactory) -> ClassifierFactory:
    """Make `factory(**kwargs)` available as `get_classifier(name, **kwargs)`."""
    if not name or not isinstance(name, str):
        raise ValueError(f"classifier name must be a non-empty string; got {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"domain classifier {name!r} registered twice")
    _REGISTRY[name] = factory
    return factory


def classifier_names() -> list[str]:
    """Registered classifier names, sorted (after importing `CLASSIFIER_MODULES`)."""
    for module in CLASSIFIER_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY)


def get_classifier(name: str, /, **kwargs) -> DomainClassifier:
    """Build the classifier registered as `name`; `kwargs` (which may include a `name` of the
    factory's own) go to its factory. Does not load it.

    An unknown name is a configuration error (`ConfigError`) listing the registered names.
    """
    names = classifier_names()
    if name not in _REGISTRY:
        registered = ", ".join(names) if names else "(none yet)"
        raise ConfigError(
            f"unknown domain classifier {name!r}; registered: {registered} (recall-fasttext "
            "takes a model from `scicurate train recall`, recall-smollm one from "
            "`scicurate train recall-llm`, recall-annotator asks an LLM with a recall_<domain> "
            "prompt), or score a predictions file with "
            "--predictions FILE.jsonl."
        )
    classifier = _REGISTRY[name](**kwargs)
    if not isinstance(classifier, DomainClassifier):
        raise TypeError(f"factory of classifier {name!r} returned {type(classifier).__name__}, "
                        "not a DomainClassifier")
    return classifier
