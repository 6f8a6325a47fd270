"""What the pipelines share around RunInference."""

from __future__ import annotations

from typing import Any


def failed_examples(failure: Any) -> tuple[list, Any]:
    """An element of RunInference's `failed_inferences` output -> (the examples of the batch the
    model raised on, the exception), whichever form Beam gives it in: a (batch, exception) pair
    or an object with `example`."""
    batch, exc = failure if isinstance(failure, tuple) else (getattr(failure, "example", []), failure)
    return (batch if isinstance(batch, list) else [batch]), exc
