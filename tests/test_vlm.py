"""The VLM page parser: request building, response handling on recorded VLM outputs served by a
local OpenAI-compatible server, fallback, the cleanup guard, and the pipeline wiring
(RunInference, fallback-rate dead letters, --reparse-flagged)."""

import base64
import json
import re
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from fake_openai import FakeOpenAI, Reply, images_in
from scicurate import prompts
from scicurate.config import LlmConfig, PdfConfig
from scicurate.llm.client import ChatResult
from scicurate.parsers.vlm import (
    VlmHighCostParser,
    apply_cleanup,
    apply_vlm,
    cleanup_request,
    deletable,
    page_request,
)
from scicurate.pipelines import pdf as pdf_pipeline
from scicurate.records import LlmUsage, PageResult, PdfInput

from conftest import FIXTURE_PDFS, FIXTURES

VLM_FIXTURES = FIXTURES / "vlm"
GOOD = (VLM_FIXTURES / "gpt4o_math_2503_04086.md").read_text()
LOOPED = (VLM_FIXTURES / "derived_gpt4o_olmo2_table_tail_loop.md").read_text()
TRUNCATED = (VLM_FIXTURES / "derived_gpt4o_math_fenced_truncated.md").read_text()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _page(index=0, text="low-cost text of the page", **kw):
    base = dict(doc_id="d" * 64, source="/x.pdf", page_index=index, doc_pages=4, status="ok", text=text,
                parser="mineru", parser_version="4", tier="flash", route="high_cost", route_reason="top_score",
                score=0.9, needs_high_cost=False)
    base.update(kw)
    return PageResult(**base)


def _result(text, ok=True, **kw):
    return ChatResult(key="k", prompt="vlm_page@1", model="Qwen2.5-VL-7B", ok=ok, text=text,
                      finish_reason=kw.pop("finish_reason", "stop"), usage=LlmUsage(1, 1, 900, 400, 2.5, ""), **kw)


def _vlm_config(server, **kw):
    llm = LlmConfig(endpoint=server.url, model="fake-vlm", backoff_s=0.0, max_retries=1)
    return PdfConfig(high_cost_parser="vlm", llm=llm, **kw)


# ---- pure cores ----------------------------------------------------------------------------

def test_page_request_carries_the_image_prompt_and_text_layer():
    prompt = prompts.load("vlm_page@1")
    request = page_request(_page(), PNG_MAGIC + b"rest", "Theorem 1.  Let  x be", prompt)
    assert request.prompt == "vlm_page@1" and request.key == "d" * 64 + ":00000"
    system, user = request.messages
    assert system["role"] == "system" and "never summarise" in system["content"]
    image, text = user["content"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG_MAGIC + b"rest").decode()
    assert "Theorem 1. Let x be" in text["text"] and "{{" not in text["text"]


def test_apply_vlm_keeps_good_output_with_provenance():
    page = apply_vlm(_page(), _result(GOOD))
    assert page.parser == "vlm" and page.tier == "vlm" and page.parser_version == "Qwen2.5-VL-7B"
    assert not page.needs_high_cost and not page.is_fallback and page.error_reason == ""
    assert page.prompt == "vlm_page@1" and page.model == "Qwen2.5-VL-7B" and page.llm.completion_tokens == 400
    assert "\\lambda_g = \\sum_{s \\in S}" in page.text and page.text.strip() == GOOD.strip()


def test_apply_vlm_normalises_delimiters_and_records_rules():
    page = apply_vlm(_page(), _result("```markdown\nThe energy \\(E = mc^2\\) holds.\n\n\\[\na^2 + b^2 = c^2\n\\]\n```"))
    assert page.text == "The energy $E = mc^2$ holds.\n\n$$\na^2 + b^2 = c^2\n$$"
    assert page.postprocess.split(",") == ["strip_fences", "math_delimiters"]


@pytest.mark.parametrize("answer,reason", [
    (LOOPED, "invalid_output"),
    ("I'm sorry, but I can't help with transcribing this image.", "invalid_output"),
])
def test_unusable_output_falls_back_to_the_low_cost_text(answer, reason):
    page = apply_vlm(_page(), _result(answer, finish_reason="length"))
    assert page.is_fallback and page.needs_high_cost and page.text == "low-cost text of the page"
    assert page.error_reason == f"high_cost_failed:{reason}" and page.parser == "mineru"
    assert page.prompt == "vlm_page@1" and page.llm.calls == 1   # what the attempt cost is kept


def test_failed_call_falls_back_with_the_clients_reason():
    page = apply_vlm(_page(), _result("", ok=False, error_reason="unavailable", error_message="3 tries failed"))
    assert page.is_fallback and page.error_reason == "high_cost_failed:unavailable" and "3 tries" in page.error_message


def test_cleanup_guard_only_deletes_short_edge_lines():
    lines = ["Journal of Physics 12 (2020)", "# 2 Methods", "We measure the field.", "$$E = mc^2$$",
             "| a | b |", "Middle content line", "More content", "x", "Downloaded from example.org"]
    assert deletable(lines, 0) and deletable(lines, 8) and deletable(lines, 7)
    assert not deletable(lines, 1)          # a heading
    assert not deletable(lines, 2)          # ends like a sentence
    assert not deletable(lines, 3)          # math
    assert not deletable(lines, 5)          # not within 3 lines of either edge
    assert not deletable(lines, 99) and not deletable(lines, -1)
    assert not deletable(["a" * 120, "b", "c"], 0)   # too long for a header


def test_apply_cleanup_deletes_what_the_guard_allows_and_records_both_prompts():
    page = apply_vlm(_page(), _result("Journal of Physics 12 (2020)\n\nWe measure the field $B$.\n\n"
                                      "It grows linearly.\n\nSee also the appendix\n\n$$B = \\mu_0 I$$\n\n"
                                      "The end of the section.\n\nDownloaded from example.org"))
    prompt = prompts.load("cleanup@1")
    request = cleanup_request(page, prompt)
    assert request.json_schema == prompt.output_schema and "0: Journal of Physics" in request.messages[-1]["content"]
    answer = ChatResult(key="k", prompt="cleanup@1", model="SmolLM2", ok=True, text="", data={"drop": [0, 2, 6, 12, 40]},
                        usage=LlmUsage(1, 1, 100, 5, 0.1, ""))
    cleaned = apply_cleanup(page, answer)
    assert cleaned.text == ("We measure the field $B$.\n\nIt grows linearly.\n\nSee also the appendix\n\n"
                            "$$B = \\mu_0 I$$\n\nThe end of the section.")
    assert cleaned.llm.flags == "cleanup_refused:3"   # 2 (math), 6 (mid-page), 40 (no such line)
    assert cleaned.prompt == "vlm_page@1,cleanup@1" and cleaned.model == "Qwen2.5-VL-7B,SmolLM2"
    assert cleaned.llm.calls == 2 and cleaned.llm.prompt_tokens == 1000
    assert cleaned.postprocess.endswith("llm_cleanup")


def test_cleanup_deleting_a_third_of_the_page_is_ignored():
    page = apply_vlm(_page(), _result("Header A\n\nHeader B\n\nBody one\n\nBody two\n\nFooter"))
    answer = ChatResult(key="k", prompt="cleanup@1", model="S", ok=True, data={"drop": [0, 2, 8]})
    assert apply_cleanup(page, answer).text == page.text


def test_cleanup_is_not_asked_for_fallback_pages():
    fallback = apply_vlm(_page(), _result(LOOPED, finish_reason="length"))
    assert cleanup_request(fallback, prompts.load("cleanup@1")) is None


# ---- the one-document parser against a recorded-output server -----------------------------

def _routed_pages(pdf_path: Path, indices):
    data = pdf_path.read_bytes()
    pdf = PdfInput.from_bytes(str(pdf_path), data)
    import pypdfium2 as pdfium

    n = len(pdfium.PdfDocument(data))
    return pdf, [_page(i, doc_id=pdf.doc_id, source=str(pdf_path), doc_pages=n) for i in indices]


def _reparse_equations_page(server):
    parser = VlmHighCostParser(_vlm_config(server))
    parser.setup()
    try:
        pdf, routed = _routed_pages(FIXTURE_PDFS / "equations.pdf", [0])
        return parser.reparse(pdf, routed), routed
    finally:
        parser.teardown()


def test_parser_retries_a_looping_answer_warmer_then_keeps_the_good_one():
    answers = {0.0: Reply(LOOPED, finish_reason="length"), 0.2: Reply(GOOD)}
    with FakeOpenAI(lambda body, n: answers[body["temperature"]]) as server:
        [page], _ = _reparse_equations_page(server)
    assert [r["temperature"] for r in server.requests] == [0.0, 0.2]
    assert page.parser == "vlm" and not page.is_fallback and page.llm.attempts == 2
    assert "repetition_truncated" in page.llm.flags and "invalid:repetition_loop" in page.llm.flags
    [image] = images_in(server.requests[0])
    png = base64.b64decode(image.split(",", 1)[1])
    assert png.startswith(PNG_MAGIC)
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    assert max(width, height) <= 1600 and max(width, height) >= 1000   # 144 dpi, capped


def test_parser_falls_back_when_every_attempt_is_truncated():
    with FakeOpenAI(lambda body, n: Reply(TRUNCATED, finish_reason="length")) as server:
        [page], routed = _reparse_equations_page(server)
    assert len(server.requests) == 3 and page.is_fallback and page.needs_high_cost
    assert page.error_reason == "high_cost_failed:invalid_output" and "truncated" in page.error_message
    assert page.text == routed[0].text


# ---- pipeline -------------------------------------------------------------------------------

def _echo_layer(body, n):
    """A VLM double that answers from the page's own text layer, so tests can check that every
    answer came back to the page it was asked for."""
    text = body["messages"][-1]["content"][1]["text"]
    layer = text.rsplit("trust the image):", 1)[1].strip()
    words = re.findall(r"[A-Za-z]{3,}", layer)[:4]
    return Reply(f"VLM page: {' '.join(words)}\n\nThe field obeys $$\\nabla \\cdot E = \\rho$$ here.")


def _run(out: Path, config: PdfConfig, pattern=str(FIXTURE_PDFS / "*.pdf"), reparse_from: Path | None = None):
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    if reparse_from is None:
        pdf_pipeline.build(pipeline, pattern, str(out), config)
    else:
        pdf_pipeline.build_reparse(pipeline, str(reparse_from), str(out), config)
    pipeline.run().wait_until_finish()
    summary = json.loads((out / "summary.json").read_text())
    pages = pq.read_table(out / "pages").to_pylist()
    return summary, pages


@pytest.mark.slow
def test_pipeline_sends_routed_pages_to_the_vlm_and_merges_them_in_order(tmp_path):
    with FakeOpenAI(_echo_layer) as server:
        summary, pages = _run(tmp_path, _vlm_config(server, route_budget=0.5))
    routed = [p for p in pages if p["route"] == "high_cost"]
    vlm = [p for p in routed if p["parser"] == "vlm"]
    assert summary["accounted"] and summary["pages_routed"] == len(routed) >= 4
    assert len(server.requests) == len(routed) == len(vlm)     # one request per routed page, none lost
    assert summary["pages_fallback"] == 0 and summary["llm_calls"] == len(routed)
    for page in vlm:
        assert page["prompt"] == "vlm_page@1" and page["model"] == "fake-vlm" and not page["needs_high_cost"]
        assert page["llm"]["calls"] == 1 and page["llm"]["completion_tokens"] > 0
        assert page["text"].startswith("VLM page:")
    # each answer came back to the page it was asked for (the double echoes the text layer)
    by_file = {Path(p["source"]).name: p["text"] for p in vlm}
    assert by_file["equations.pdf"].startswith("VLM page: Governing equations")
    assert by_file["table.pdf"].startswith("VLM page: Catalyst batches")
    assert by_file["image_only.pdf"].startswith("VLM page: text layer")   # "(no text layer)"
    docs = pq.read_table(tmp_path / "documents").to_pylist()
    for doc in docs:
        for span in doc["spans"]:
            if span["parser"] == "vlm":
                assert doc["text"][span["start"]:span["end"]].startswith("VLM page:")
    assert all(images_in(r)[0].startswith("data:image/png;base64,") for r in server.requests)


@pytest.mark.slow
def test_documents_where_the_vlm_mostly_fails_are_dead_lettered(tmp_path):
    with FakeOpenAI(lambda body, n: "I'm sorry, but I can't assist with that request.") as server:
        config = _vlm_config(server, route_budget=1.0, min_fallback_pages=2, max_fallback_rate=0.5)
        config = config.replace(llm=config.llm.replace(temperatures=(0.0,)))
        summary, pages = _run(tmp_path, config)
    routed = [p for p in pages if p["route"] == "high_cost"]
    assert routed and all(p["is_fallback"] and p["needs_high_cost"] for p in routed)
    assert all(p["error_reason"] == "high_cost_failed:invalid_output" for p in routed)
    by_doc = {}
    for p in routed:
        by_doc.setdefault(p["doc_id"], []).append(p)
    many = sum(1 for ps in by_doc.values() if len(ps) >= 2)
    assert many >= 1
    assert summary["dead_letter_reasons"].get("high_cost_fallback_rate") == many
    assert summary["accounted"]
    dead = pq.read_table(tmp_path / "dead_letter").to_pylist()
    assert all("failed on" in d["message"] for d in dead if d["reason"] == "high_cost_fallback_rate")


@pytest.mark.slow
def test_reparse_flagged_reparses_only_flagged_pages(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    summary1, pages1 = _run(first, PdfConfig(route_budget=0.5))
    flagged = {p["page_id"] for p in pages1 if p["needs_high_cost"]}
    assert flagged and summary1["accounted"]
    with FakeOpenAI(_echo_layer) as server:
        summary2, pages2 = _run(second, _vlm_config(server, route_budget=0.5), reparse_from=first)
    assert len(server.requests) == len(flagged)
    assert len(pages2) == len(pages1)
    after = {p["page_id"]: p for p in pages2}
    before = {p["page_id"]: p for p in pages1}
    for page_id, page in after.items():
        if page_id in flagged:
            assert page["parser"] == "vlm" and not page["needs_high_cost"] and page["prompt"] == "vlm_page@1"
        else:
            assert (page["text"], page["parser"]) == (before[page_id]["text"], before[page_id]["parser"])
    assert summary2["inputs"] == summary1["inputs"] and summary2["accounted"]
    assert summary2["documents"] == summary1["documents"] and summary2["dead_letter"] == summary1["dead_letter"]
    assert summary2["pages_needs_high_cost"] == 0


def test_a_failed_inference_batch_keeps_every_page_and_dead_letters_the_exception():
    from apache_beam.pvalue import TaggedOutput

    from scicurate.pipelines.pdf_steps import failed_inference_pages

    pages = [_page(0), _page(1)]
    batch = [((p, "layer"), object()) for p in pages]
    out = list(failed_inference_pages((batch, RuntimeError("handler bug")), "pdf_vlm"))
    kept = [o for o in out if isinstance(o, PageResult)]
    dead = [o.value for o in out if isinstance(o, TaggedOutput)]
    assert [p.page_index for p in kept] == [0, 1]
    assert all(p.is_fallback and p.error_reason == "high_cost_failed:llm_exception" for p in kept)
    assert [(d.page_index, d.stage, d.reason) for d in dead] == [(0, "pdf_vlm", "llm_exception"), (1, "pdf_vlm", "llm_exception")]
    assert dead[0].message == "RuntimeError: handler bug"
    # the cleanup stage keeps its pages unchanged: they already hold the VLM's text
    cleaned = [o for o in failed_inference_pages(([(p, object()) for p in pages], ValueError("x")), "pdf_cleanup")
               if isinstance(o, PageResult)]
    assert cleaned == pages
