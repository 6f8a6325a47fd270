"""Versioned prompt files: loading, pinning, rendering, and the lock that stops silent edits."""

import pytest

from scicurate import prompts


def test_every_prompt_file_matches_the_lock():
    assert prompts.lock() == prompts.read_lock(), (
        "a prompt file changed without a new version, or a new version is missing from "
        "prompts/versions.lock (see prompts/README.md)")


def test_load_pins_and_defaults_to_newest():
    assert prompts.load("vlm_page").ref == prompts.load("vlm_page@1").ref == "vlm_page@1"
    with pytest.raises(prompts.PromptError, match="versions \\[1\\], not 9"):
        prompts.load("vlm_page@9")
    with pytest.raises(prompts.PromptError, match="no prompt"):
        prompts.load("nope")


def test_json_prompts_carry_a_valid_schema():
    cleanup = prompts.load("cleanup@1")
    assert cleanup.output == "json" and cleanup.output_schema["required"] == ["drop"]
    assert cleanup.placeholders() == {"lines"}


def test_render_inserts_values_once_and_requires_all():
    prompt = prompts.load("vlm_page@1")
    text = prompt.render_user(text_layer="x {{text_layer}} $\\frac{a}{b}$")
    assert "x {{text_layer}} $\\frac{a}{b}$" in text and text.count("{{") == 1
    with pytest.raises(prompts.PromptError, match="missing values"):
        prompt.render_user()


@pytest.mark.parametrize("body,message", [
    ("no front matter", "starts with '---'"),
    ("---\nid: a\nversion: 1\n", "not closed"),
    ("---\nid: a\nversion: 1\npurpose: p\n---\nbody", "lacks 'output'"),
    ("---\nid: a\nversion: 1\npurpose: p\noutput: json\n---\nbody", "needs an output_schema"),
    ("---\nid: a\nversion: 1\npurpose: p\noutput: json\noutput_schema: {type: nonsense}\n---\nb", "not a valid JSON schema"),
])
def test_malformed_prompt_files_are_rejected(body, message):
    with pytest.raises(prompts.PromptError, match=message):
        prompts.parse(body)


def test_path_and_front_matter_must_agree(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "v2.md").write_text("---\nid: x\nversion: 3\npurpose: p\noutput: text\n---\nhi")
    with pytest.raises(prompts.PromptError, match="front matter says x@3"):
        prompts.load("x@2", root=tmp_path)
