"""The high-cost VLM page parser: page image + `prompts/vlm_page` -> Markdown with LaTeX.

Pure cores, shared by the Beam pipeline (RunInference over `LLMClient`) and the one-document
path (`VlmHighCostParser`):

    page_request(page, render, prompt)  -> ChatRequest (image as a PNG data URL)
    vlm_problems(raw, finish_reason)    -> the validator: why an answer is unusable (retried
                                           warmer by the client's temperature schedule)
    apply_vlm(page, result, render)     -> PageResult: VLM text after its own post-processing
                                           (parsers.vlm_postprocess), or the low-cost text
                                           flagged is_fallback when every attempt failed
    cleanup_request / apply_cleanup     -> the optional small-LLM pass (`prompts/cleanup`): it
                                           may only name lines to delete, and only short lines
                                           at the top or bottom of the page are deleted

The VLM's output never replaces a page unless it passed validation; a page it fails on keeps
the low-cost text, `needs_high_cost=true` (so `--reparse-flagged` can retry it) and the reason.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import Any, Sequence

from scicurate.llm.client import ChatRequest, ChatResult
from scicurate.records import LlmUsage, PageResult, PdfInput

from .high_cost import HighCostParser, apply_high_cost
from .vlm_postprocess import clean_vlm_markdown

PARSER_NAME = "vlm"
TIER = "vlm"
TEXT_LAYER_PROMPT_CHARS = 3000   # enough to disambiguate symbols; more only costs tokens
CLEANUP_EDGE_LINES = 3           # the cleanup pass may only delete this many lines at each end
CLEANUP_MAX_LINE_CHARS = 100     # …and only short ones: headers, footers, page numbers
# Math, markup and table cells mean content, never a running header (`$`, `|`, `=`, `<sup>`, …).
_CONTENT_MARKS = re.compile(r"[$|=<>^_\\∈∉⊂∑∏∫±×≤≥≈→]")


def page_request(page: PageResult, png: bytes, text_layer: str, prompt: Any,
                 max_tokens: int | None = None) -> ChatRequest:
    """The chat request for one routed page. `prompt` is a `scicurate.prompts.Prompt`."""
    layer = " ".join(text_layer.split())[:TEXT_LAYER_PROMPT_CHARS] or "(no text layer)"
    image = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image}},
        {"type": "text", "text": prompt.render_user(text_layer=layer)},
    ]})
    return ChatRequest(key=page.page_id, messages=tuple(messages), prompt=prompt.ref, max_tokens=max_tokens)


def vlm_problems(raw: str, finish_reason: str) -> tuple[str, ...]:
    """Validator for the client: the post-processing rules' verdict on a raw answer."""
    return clean_vlm_markdown(raw, finish_reason=finish_reason).problems


def fallback(page: PageResult, reason: str, message: str, result: ChatResult | None = None) -> PageResult:
    """The routed page with its low-cost text, marked as a failed high-cost attempt (as every
    high-cost parser marks it), plus what the VLM attempt cost when there was one."""
    page = apply_high_cost(page, None, "", "", (reason, message))
    if result is None:
        return page
    return dataclasses.replace(page, prompt=result.prompt, model=result.model, llm=result.usage)


def plan_requests(routed: Sequence[PageResult], renders: dict[int, Any],
                  prompt: Any) -> tuple[list[tuple[PageResult, str, ChatRequest]], list[PageResult]]:
    """Routed pages and their sandbox renders -> ([(page, text layer, request)], fallbacks for
    pages that could not be rendered). `renders` maps page index to RenderedPage|RenderFailure."""
    from scicurate.parsers.sandbox import RenderedPage

    asks, failed = [], []
    for page in routed:
        render = renders.get(page.page_index)
        if isinstance(render, RenderedPage):
            asks.append((page, render.text_layer, page_request(page, render.png, render.text_layer, prompt)))
        else:
            reason = getattr(render, "reason", "no_render")
            failed.append(fallback(page, f"render_{reason}", getattr(render, "message", "")))
    return asks, failed


def apply_vlm(page: PageResult, result: ChatResult, text_layer: str = "") -> PageResult:
    """A routed page and the VLM's answer -> the page row (VLM text, or flagged fallback)."""
    if not result.ok:
        return fallback(page, result.error_reason, result.error_message, result)
    cleaned = clean_vlm_markdown(result.text, finish_reason=result.finish_reason, text_layer=text_layer)
    if cleaned.problems:   # the client validated the raw answer; this is the loop-cut text
        return fallback(page, "invalid_output", "; ".join(cleaned.problems), result)
    return dataclasses.replace(
        page, text=cleaned.markdown, parser=PARSER_NAME, parser_version=result.model, tier=TIER,
        needs_high_cost=False, is_fallback=False, postprocess=",".join(cleaned.rules),
        error_reason="", error_message="", prompt=result.prompt, model=result.model, llm=result.usage,
    )


# ---- the optional small-LLM cleanup pass ---------------------------------------------------

def _edge_lines(lines: Sequence[str]) -> set[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return set(filled[:CLEANUP_EDGE_LINES]) | set(filled[-CLEANUP_EDGE_LINES:])


def cleanup_request(page: PageResult, prompt: Any) -> ChatRequest | None:
    """A cleanup request for a page the VLM parsed, or None when there is nothing to ask."""
    if page.parser != PARSER_NAME or page.is_fallback or not page.text.strip():
        return None
    lines = page.text.split("\n")
    numbered = "\n".join(f"{i}: {line[:160]}" for i, line in enumerate(lines) if line.strip())
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": prompt.render_user(lines=numbered)})
    return ChatRequest(key=page.page_id, messages=tuple(messages), prompt=prompt.ref,
                       json_schema=prompt.output_schema)


def deletable(lines: Sequence[str], index: int) -> bool:
    """Rule guard on the small model's answer: only short lines at the page edges that do not
    read as content (no math, table cells, headings, or sentence-ending punctuation)."""
    if not 0 <= index < len(lines) or index not in _edge_lines(lines):
        return False
    line = lines[index].strip()
    return (0 < len(line) <= CLEANUP_MAX_LINE_CHARS and not _CONTENT_MARKS.search(line)
            and not line.startswith("#") and not line.endswith((".", "!", "?", ";", ":", ",")))


def apply_cleanup(page: PageResult, result: ChatResult) -> PageResult:
    """Delete the lines the cleanup model named, where the rule guard allows it."""
    usage = (page.llm or LlmUsage()) + dataclasses.replace(result.usage, flags="")
    prompt = f"{page.prompt},{result.prompt}" if page.prompt else result.prompt
    model = page.model if result.model == page.model else f"{page.model},{result.model}"
    if not result.ok:
        return dataclasses.replace(page, llm=dataclasses.replace(
            usage, flags=",".join(f for f in (usage.flags, f"cleanup_failed:{result.error_reason}") if f)))
    lines = page.text.split("\n")
    asked = sorted({i for i in (result.data or {}).get("drop", []) if isinstance(i, int)})
    drop = {i for i in asked if deletable(lines, i)}
    if len(drop) > max(1, sum(1 for line in lines if line.strip()) // 3):
        drop = set()   # a small model deleting a third of a page is wrong, not cleaning
    flags = usage.flags
    if len(drop) < len(asked):
        flags = ",".join(f for f in (flags, f"cleanup_refused:{len(asked) - len(drop)}") if f)
    if not drop:
        return dataclasses.replace(page, prompt=prompt, model=model, llm=dataclasses.replace(usage, flags=flags))
    text = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()
    rules = ",".join(r for r in (page.postprocess, "llm_cleanup") if r)
    return dataclasses.replace(page, text=text, postprocess=rules, prompt=prompt, model=model,
                               llm=dataclasses.replace(usage, flags=flags))


# ---- one-document path ---------------------------------------------------------------------

class VlmHighCostParser(HighCostParser):
    """Renders routed pages in the sandbox and asks the VLM through `LLMClient` directly.

    The Beam pipeline does the same through `RunInference` (see `pipelines.pdf`); this class
    serves `scicurate parse` and any caller without Beam.
    """

    name = PARSER_NAME

    def setup(self) -> None:
        from scicurate import prompts
        from scicurate.llm.client import LLMClient
        from scicurate.parsers.sandbox import SandboxedParser

        self.prompt = prompts.load(self.config.vlm_prompt)
        self.client = LLMClient(self.config.llm)
        self.cleanup_prompt = prompts.load(self.config.cleanup_prompt) if self.config.vlm_cleanup else None
        self.cleanup_client = None
        self._sandbox = SandboxedParser(self.config, load_parser=False)
        self._sandbox.start()

    def attach_cleanup(self, client: Any) -> None:
        """The cleanup pass's client (often an embedded server the caller started)."""
        self.cleanup_client = client

    def parse_pages(self, pdf: PdfInput, pages: Sequence[int], doc_pages: int):
        raise NotImplementedError("the VLM parser returns Markdown pages: use reparse()")

    def reparse(self, pdf: PdfInput, routed: Sequence[PageResult]) -> list[PageResult]:
        renders = self._sandbox.render_pages(pdf, [p.page_index for p in routed], dpi=self.config.vlm_dpi,
                                             max_side_px=self.config.vlm_max_side_px)
        asks, failed = plan_requests(routed, renders, self.prompt)
        out: dict[int, PageResult] = {p.page_index: p for p in failed}
        results = self.client.chat_many([request for _, _, request in asks], vlm_problems)
        for (page, layer, _), result in zip(asks, results):
            out[page.page_index] = apply_vlm(page, result, layer)
        if self.cleanup_client is not None and self.cleanup_prompt is not None:
            for index, page in list(out.items()):
                request = cleanup_request(page, self.cleanup_prompt)
                if request is not None:
                    out[index] = apply_cleanup(page, self.cleanup_client.chat(request))
        return [out[p.page_index] for p in routed]

    def teardown(self) -> None:
        for attr in ("client", "cleanup_client"):
            client = getattr(self, attr, None)
            if client is not None:
                client.close()
        sandbox = getattr(self, "_sandbox", None)
        if sandbox is not None:
            sandbox.close()

