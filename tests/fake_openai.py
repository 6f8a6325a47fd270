"""A local OpenAI-compatible server for tests: canned answers, recorded requests.

`FakeOpenAI(responder)` serves /v1/models and /v1/chat/completions on 127.0.0.1 (free port) in
a thread. `responder(body, n)` gets the request JSON and the 0-based request count and returns
either a string (the answer), a `Reply` (answer + finish_reason / HTTP status / delay), or a
callable's result computed from the request (e.g. by temperature). Requests are recorded
with their in-flight concurrency, so tests can assert on what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    delay_s: float = 0.0
    prompt_tokens: int = 11
    completion_tokens: int | None = None   # None: one per 4 chars of content


class FakeOpenAI:
    def __init__(self, responder: Callable[[dict, int], Any], *, model: str = "fake-vlm") -> None:
        self.responder = responder
        self.model = model
        self.requests: list[dict] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up (a timeout test)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    n = len(outer.requests)
                    outer.requests.append(body)
                    outer._in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer._in_flight)
                try:
                    reply = outer.responder(body, n)
                    if isinstance(reply, str):
                        reply = Reply(reply)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.status != 200:
                        self._send(reply.status, {"error": {"message": f"fake error {reply.status}",
                                                            "type": "server_error", "code": reply.status}})
                        return
                    tokens = reply.completion_tokens
                    if tokens is None:
                        tokens = max(1, len(reply.content) // 4)
                    self._send(200, {
                        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": body.get("model"),
                        "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                                     "message": {"role": "assistant", "content": reply.content}}],
                        "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": tokens,
                                  "total_tokens": reply.prompt_tokens + tokens},
                    })
                finally:
                    with outer._lock:
                        outer._in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def images_in(body: dict) -> list[str]:
    """The image data URLs a chat request carried."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls += [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    return urls
