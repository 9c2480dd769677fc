"""Answering a question with a generator: the context of :mod:`omniret.tasks.context` sent to any
OpenAI-compatible ``/chat/completions`` endpoint (llama.cpp's server, vLLM, Ollama, OpenAI...).

The prompt numbers the evidence ``[1] … [n]`` and asks for an answer that uses only it and cites it
as ``[n]``, in the question's language (detected, :mod:`omniret.query.language`). The answer comes
back with the context, so a caller prints the numbered citations the answer refers to.
Configuration: arguments, else ``$OMNIRET_LLM_URL`` / ``$OMNIRET_LLM_MODEL`` / ``$OMNIRET_LLM_KEY``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from omniret.errors import OmniretError, QueryError
from omniret.tasks.context import Context

LLM_URL_ENV, LLM_MODEL_ENV, LLM_KEY_ENV = "OMNIRET_LLM_URL", "OMNIRET_LLM_MODEL", "OMNIRET_LLM_KEY"
DEFAULT_MODEL = "default"
LANGUAGE_NAMES = {"en": "English", "de": "German", "es": "Spanish", "fr": "French", "ja": "Japanese",
                  "zh": "Chinese", "ko": "Korean", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
                  "ru": "Russian", "pl": "Polish", "sv": "Swedish", "tr": "Turkish", "ar": "Arabic"}

SYSTEM_PROMPT = """You answer questions from the numbered sources you are given, and from nothing else.
Cite every claim with the number of its source in square brackets, e.g. [2] or [1][3].
If the sources do not contain the answer, say that they do not. Answer in {language}."""


class GeneratorError(OmniretError):
    """The generator endpoint failed or answered in an unexpected shape."""


@dataclass
class Answer:
    """A generated answer, the context it was given and the source numbers it cites."""

    text: str
    context: Context
    model: str
    cited: list[int] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "model": self.model, "cited": self.cited, "usage": self.usage,
                "context": self.context.to_dict()}


def llm_config(url: str | None = None, model: str | None = None, api_key: str | None = None
               ) -> tuple[str | None, str, str | None]:
    """The endpoint, model and key: arguments, else the ``$OMNIRET_LLM_*`` variables (url may be None)."""
    url = url or os.environ.get(LLM_URL_ENV) or None
    return (url.rstrip("/") if url else None, model or os.environ.get(LLM_MODEL_ENV) or DEFAULT_MODEL,
            api_key or os.environ.get(LLM_KEY_ENV) or None)


def messages(context: Context) -> list[dict[str, str]]:
    """The chat messages for ``context``: the instructions, then the sources and the question."""
    language = LANGUAGE_NAMES.get(context.language or "", "the language of the question")
    sources = context.render() or "(no sources were found)"
    return [{"role": "system", "content": SYSTEM_PROMPT.format(language=language)},
            {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {context.question}"}]


def cited_numbers(text: str, n_pieces: int) -> list[int]:
    """The source numbers ``[n]`` an answer cites (in order of first citation, only those that exist)."""
    out: list[int] = []
    for m in re.finditer(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]", text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if 1 <= n <= n_pieces and n not in out:
                out.append(n)
    return out


def generate(context: Context, url: str, *, model: str = DEFAULT_MODEL, api_key: str | None = None,
             client: Any = None, timeout: float = 120.0, max_tokens: int = 800, temperature: float = 0.0) -> Answer:
    """Ask the OpenAI-compatible endpoint at ``url`` (``.../v1`` or a full ``/chat/completions`` URL)."""
    import httpx

    if not url:
        raise QueryError(f"no generator endpoint: pass --llm-url / url= or set {LLM_URL_ENV} "
                         "(e.g. http://127.0.0.1:8080/v1 for llama.cpp's server)")
    endpoint = url if url.endswith("/chat/completions") else f"{url.rstrip('/')}/chat/completions"
    body = {"model": model, "messages": messages(context), "temperature": temperature, "max_tokens": max_tokens}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    own = client is None
    http = client or httpx.Client()
    try:
        r = http.post(endpoint, json=body, headers=headers, timeout=timeout)
        r.raise_for_status()
        data = r.json()
        text = data["choices"][0]["message"]["content"]
    except httpx.HTTPError as e:
        raise GeneratorError(f"the generator at {endpoint} failed: {e}") from e
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise GeneratorError(f"the generator at {endpoint} answered without choices[0].message.content: {e}") from e
    finally:
        if own:
            http.close()
    text = str(text or "").strip()
    return Answer(text, context, str(data.get("model") or model), cited_numbers(text, len(context.pieces)),
                  dict(data.get("usage") or {}))
