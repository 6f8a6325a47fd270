"""Versioned prompt files, loaded by id or id@version.

Layout: `prompts/<id>/v<version>.md`, each a Markdown file with front matter:

    ---
    id: vlm_page
    version: 1
    purpose: one line on what the prompt is for
    output: markdown | json
    output_schema: {JSON schema, when output is json}
    ---
    <system text>
    === user ===
    <user text with {{placeholders}}>

Old versions stay next to new ones, so a run can pin `vlm_page@1` and rows written by an
earlier version stay explainable. `prompts/versions.lock` holds the sha256 of every file:
editing a released prompt without bumping its version fails the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent
LOCK_FILE = PROMPTS_DIR / "versions.lock"
_USER_MARK = "\n=== user ===\n"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_OUTPUTS = ("markdown", "json", "text")


class PromptError(ValueError):
    """A prompt file is missing or malformed (a fatal start-up error)."""


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    version: int
    purpose: str
    output: str
    system: str
    user: str
    output_schema: Mapping[str, Any] | None
    sha256: str

    @property
    def ref(self) -> str:
        """`id@version`: what every output row records."""
        return f"{self.id}@{self.version}"

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.user)) | set(_PLACEHOLDER.findall(self.system))

    def render_user(self, **values: str) -> str:
        """The user text with {{name}} replaced. Values are data and are inserted verbatim,
        once: a value that itself contains {{x}} is not expanded again."""
        missing = self.placeholders() - set(values)
        if missing:
            raise PromptError(f"{self.ref}: missing values for {sorted(missing)}")
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)


def parse(text: str, origin: str = "<string>") -> Prompt:
    if not text.startswith("---\n"):
        raise PromptError(f"{origin}: a prompt file starts with '---' front matter")
    try:
        head, body = text[4:].split("\n---\n", 1)
    except ValueError:
        raise PromptError(f"{origin}: front matter is not closed with '---'") from None
    meta = yaml.safe_load(head) or {}
    for key in ("id", "version", "purpose", "output"):
        if key not in meta:
            raise PromptError(f"{origin}: front matter lacks {key!r}")
    if meta["output"] not in _OUTPUTS:
        raise PromptError(f"{origin}: output must be one of {_OUTPUTS}")
    schema = meta.get("output_schema")
    if meta["output"] == "json":
        import jsonschema

        if not isinstance(schema, dict):
            raise PromptError(f"{origin}: a json prompt needs an output_schema")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise PromptError(f"{origin}: output_schema is not a valid JSON schema: {exc.message}") from None
    if _USER_MARK in body:
        system, user = body.split(_USER_MARK, 1)
    else:
        system, user = "", body
    return Prompt(
        id=str(meta["id"]), version=int(meta["version"]), purpose=str(meta["purpose"]).strip(),
        output=meta["output"], system=system.strip(), user=user.strip(),
        output_schema=schema, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def versions(prompt_id: str, root: Path = PROMPTS_DIR) -> list[int]:
    folder = root / prompt_id
    found = [int(m.group(1)) for p in folder.glob("v*.md") if (m := re.fullmatch(r"v(\d+)\.md", p.name))]
    return sorted(found)


def load(ref: str, root: Path = PROMPTS_DIR) -> Prompt:
    """`vlm_page` (newest version) or `vlm_page@1` (pinned)."""
    prompt_id, _, pinned = ref.partition("@")
    available = versions(prompt_id, root)
    if not available:
        raise PromptError(f"no prompt {prompt_id!r} under {root}")
    version = int(pinned) if pinned else available[-1]
    if version not in available:
        raise PromptError(f"{prompt_id} has versions {available}, not {version}")
    path = root / prompt_id / f"v{version}.md"
    prompt = parse(path.read_text(encoding="utf-8"), str(path))
    if prompt.id != prompt_id or prompt.version != version:
        raise PromptError(f"{path}: front matter says {prompt.ref}, the path says {prompt_id}@{version}")
    return prompt


def all_refs(root: Path = PROMPTS_DIR) -> list[str]:
    return sorted(f"{d.name}@{v}" for d in root.iterdir() if d.is_dir() and not d.name.startswith("_")
                  for v in versions(d.name, root))


def lock(root: Path = PROMPTS_DIR) -> dict[str, str]:
    """{id@version: sha256} of every prompt file (what versions.lock must equal)."""
    return {ref: load(ref, root).sha256 for ref in all_refs(root)}


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))
