"""The MinerU VLM high-cost parser against a fake OpenAI-compatible server (no network, no GPU).

The fake speaks the protocol MinerU's http-client sends (mineru_vl_utils/vlm_client/
http_client.py): GET /v1/models, then POST /v1/chat/completions with a base64 PNG data URL and
a MinerU prompt. It answers the layout prompt with MinerU2.5's box grammar and every block
prompt with canned text, and records what it was sent.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import scicurate.config as config_module
from scicurate.config import ConfigError, PdfConfig
from scicurate.parsers.mineru_vlm import MineruVlmHighCostParser
from scicurate.parsers.postprocess import render_page
from scicurate.records import PdfInput

from conftest import FIXTURE_PDFS

pytest.importorskip("mineru_vl_utils", reason="MinerU's VLM client: pip install 'mineru>=4,<5'")

MODEL = "fake-mineru2.5"
TITLE_TEXT = "Canned heading from the fake VLM"
TEXT_REPLY = "Canned paragraph from the fake VLM about the heat equation."
FORMULA_REPLY = r"\partial_t u = \alpha \nabla^2 u"
# Boxes in MinerU2.5's 0-1000 page coordinates, in reading order.
TITLE_BOX = (100, 80, 900, 140)
TEXT_BOX = (100, 200, 900, 400)
EQUATION_BOX = (200, 450, 800, 520)
LAYOUT_REPLY = "\n".join(
    f"<|box_start|>{x1} {y1} {x2} {y2}<|box_end|><|ref_start|>{kind}<|ref_end|><|rotate_up|>"
    for kind, (x1, y1, x2, y2) in (("title", TITLE_BOX), ("text", TEXT_BOX), ("equation", EQUATION_BOX))
)


def _config(endpoint: str, model: str = MODEL, **llm) -> PdfConfig:
    """A PdfConfig naming the VLM server, whichever form the LLM settings take in this tree."""
    if hasattr(config_module, "LlmConfig"):
        return PdfConfig(llm=config_module.LlmConfig(endpoint=endpoint, model=model, **llm))
    return types.SimpleNamespace(page_timeout_s=60.0, llm_endpoint=endpoint, llm_model=model)  # type: ignore[return-value]


class _FakeMinerUServer:
    """A threaded stdlib HTTP server answering as a MinerU2.5 vLLM server would."""

    def __init__(self, *, chat_status: int = 200, chat_delay_s: float = 0.0) -> None:
        self.requests: list[dict] = []
        self.chat_status = chat_status
        self.chat_delay_s = chat_delay_s
        self.release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:  # the client gave up first (the timeout test)
                    pass

            def do_GET(self):
                fake.record({"method": "GET", "path": self.path})
                if self.path == "/v1/models":
                    self._reply(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sent = fake.describe(body)
                fake.record({"method": "POST", "path": self.path, **sent})
                if fake.chat_delay_s:
                    fake.release.wait(fake.chat_delay_s)
                if fake.chat_status != 200:
                    self._reply(fake.chat_status, {"object": "error", "message": "canned failure"})
                    return
                prompt = sent["prompt"]
                if "Layout Detection" in prompt:
                    content = LAYOUT_REPLY
                elif "Formula Recognition" in prompt:
                    content = FORMULA_REPLY
                elif sent["image_size"][1] < 150:  # the short title crop
                    content = TITLE_TEXT
                else:
                    content = TEXT_REPLY
                self._reply(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    @staticmethod
    def describe(body: dict) -> dict:
        """What a chat request carried: model, system prompt, prompt text, attached image."""
        from PIL import Image

        system, prompt, images = "", "", []
        for message in body.get("messages", []):
            if message["role"] == "system":
                system = message["content"]
                continue
            for part in message["content"]:
                if part["type"] == "text":
                    prompt += part["text"]
                elif part["type"] == "image_url":
                    images.append(part["image_url"]["url"])
        size = (0, 0)
        if images:
            match = re.match(r"data:image/(\w+);base64,(.*)", images[0], re.DOTALL)
            if match:
                size = Image.open(io.BytesIO(base64.b64decode(match.group(2)))).size
        return {"model": body.get("model"), "system": system, "prompt": prompt, "images": len(images),
                "image_is_png_data_url": bool(images) and images[0].startswith("data:image/png;base64,"),
                "image_size": size, "temperature": body.get("temperature")}

    def __enter__(self) -> "_FakeMinerUServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _pdf(name: str) -> PdfInput:
    return PdfInput.from_bytes(f"fixtures/{name}", (FIXTURE_PDFS / name).read_bytes())


def _parser(config) -> MineruVlmHighCostParser:
    parser = MineruVlmHighCostParser(config)
    parser.setup()
    return parser


# -- configuration ---------------------------------------------------------------------------

def test_setup_without_endpoint_says_what_to_do():
    with pytest.raises(ConfigError, match="--llm-endpoint") as err:
        MineruVlmHighCostParser(_config("")).setup()
    assert "MinerU2.5" in str(err.value)


def test_setup_rejects_an_endpoint_mineru_cannot_use():
    with pytest.raises(ConfigError, match="not a usable server URL"):
        MineruVlmHighCostParser(_config("http://localhost:30000/v1?token=x")).setup()


@pytest.mark.skipif(not hasattr(config_module, "LlmConfig"), reason="this tree has no LlmConfig.backend")
def test_setup_rejects_an_in_process_backend():
    config = PdfConfig(llm=config_module.LlmConfig(backend="vllm", model="/models/mineru"))
    with pytest.raises(ConfigError, match="mineru-kit vlm-server"):
        MineruVlmHighCostParser(config).setup()


def test_parser_name_and_tier():
    assert MineruVlmHighCostParser.name == "mineru-vlm" and MineruVlmHighCostParser.tier == "vlm"


# -- failures become failed pages -----------------------------------------------------------

def test_unreachable_server_fails_every_page_without_raising():
    extra = {"max_retries": 1, "backoff_s": 0.05} if hasattr(config_module, "LlmConfig") else {}
    parser = _parser(_config("http://127.0.0.1:9/v1", **extra))
    pdf = _pdf("text_only.pdf")
    pages = parser.parse_pages(pdf, [0, 1], 2)
    assert sorted(pages) == [0, 1]
    for index, page in pages.items():
        assert page.status == "failed" and page.error_reason == "parser_error"
        assert page.parser == "mineru-vlm" and page.tier == "vlm" and page.page_index == index
        assert "127.0.0.1:9" in page.error_message and "not usable" in page.error_message
        assert page.doc_id == pdf.doc_id and page.blocks == ()


def test_server_error_on_chat_fails_the_page_with_the_status():
    with _FakeMinerUServer(chat_status=400) as fake:
        pages = _parser(_config(fake.url)).parse_pages(_pdf("equations.pdf"), [0], 1)
    assert pages[0].status == "failed" and pages[0].error_reason == "parser_error"
    assert "400" in pages[0].error_message and "canned failure" in pages[0].error_message


@pytest.mark.skipif(not hasattr(config_module, "LlmConfig"), reason="needs LlmConfig.timeout_s")
def test_slow_server_is_a_page_timeout():
    with _FakeMinerUServer(chat_delay_s=5.0) as fake:
        parser = _parser(_config(fake.url, timeout_s=1.0, max_retries=0))
        pages = parser.parse_pages(_pdf("equations.pdf"), [0], 1)
    assert pages[0].status == "failed" and pages[0].error_reason == "page_timeout"


# -- end to end through MinerU's client -----------------------------------------------------

def test_page_parses_end_to_end_and_mineru_sends_what_we_expect():
    pdf = _pdf("equations.pdf")
    with _FakeMinerUServer() as fake:
        parser = _parser(_config(fake.url))
        # Page 1 does not exist in this one-page file: it fails alone, page 0 still parses.
        pages = parser.parse_pages(pdf, [0, 1], 2)
        parser.teardown()
    requests = list(fake.requests)

    ok = pages[0]
    assert ok.status == "ok" and ok.parser == "mineru-vlm" and ok.tier == "vlm"
    assert "mineru-4" in ok.parser_version and f"model={MODEL}" in ok.parser_version
    assert [b.type for b in ok.blocks] == ["title", "text", "equation"]
    assert ok.blocks[0].text == TITLE_TEXT and ok.blocks[1].text == TEXT_REPLY
    assert FORMULA_REPLY in ok.blocks[2].text
    assert ok.blocks[1].bbox == pytest.approx((0.1, 0.2, 0.9, 0.4))
    markdown = render_page(ok.blocks).markdown
    assert TEXT_REPLY in markdown and f"$$\n{FORMULA_REPLY}\n$$" in markdown

    missing = pages[1]
    assert missing.status == "failed" and missing.error_reason == "parser_error"
    assert "does not exist" in missing.error_message

    # The model check, then one layout request for the page, then one request per block.
    assert requests[0] == {"method": "GET", "path": "/v1/models"}
    chats = requests[1:]
    assert all(r["method"] == "POST" and r["path"] == "/v1/chat/completions" for r in chats)
    assert all(r["model"] == MODEL and r["images"] == 1 and r["image_is_png_data_url"] for r in chats)
    assert all(r["temperature"] == 0.0 for r in chats)
    layout, blocks = chats[0], chats[1:]
    assert layout["prompt"] == "\nLayout Detection:" and layout["image_size"] == (1036, 1036)
    assert sorted(r["prompt"] for r in blocks) == sorted(
        ["\nText Recognition:", "\nText Recognition:", "\nFormula Recognition:"])
    # The equation crop is cut from a render at MinerU's own 200 dpi: 0.6 x 0.07 of an A4 page.
    width_px, height_px = 595.28 * 200 / 72, 841.89 * 200 / 72
    (crop,) = [r["image_size"] for r in blocks if "Formula" in r["prompt"]]
    assert crop[0] == pytest.approx(0.6 * width_px, abs=2) and crop[1] == pytest.approx(0.07 * height_px, abs=2)
