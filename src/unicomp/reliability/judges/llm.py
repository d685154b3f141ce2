"""An LLM judge over any OpenAI-compatible endpoint (GPT-4 as the paper used, or a local model
behind `unicomp serve` / vLLM): the judge prompt goes in one user turn, greedy, a short answer.

The key is read from the environment at call time (never stored, logged, or part of a record or
a unit key). Transport failures are errors naming the item (the endpoint backend's rules: retries
on connection errors, 429 and 5xx only). A reply that parses to no label is never dropped or
guessed: the caller stops with all such items named, or (on_malformed: record) keeps them
unjudged, listed by id in the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LlmJudgeConfig(BaseModel):
    """Which model judges, and where it is served."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="API root including /v1, e.g. https://api.openai.com/v1")
    model: str = Field(description="the judge model's name on that server, e.g. gpt-4-1106-preview")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="environment variable holding the key (read at call "
                                                                  "time, never stored); None: send no key")
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(3, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    max_tokens: int = Field(32, ge=1, description="a label needs a few tokens")
    on_malformed: Literal["stop", "record"] = Field(
        "stop", description="a reply without a label: stop the run naming the items (default), or record the item "
                            "as unjudged (label None, what TrustLLM does when its GPT call fails) and list it in the result")

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def record(self) -> dict[str, Any]:
        """What identifies the judge in a unit key and a result (no key, no tuning knobs)."""
        out = {"type": "llm", "base_url": self.base_url.rstrip("/"), "model": self.model, "max_tokens": self.max_tokens}
        if self.on_malformed != "stop":  # changes scores, so it is part of the key
            out["on_malformed"] = self.on_malformed
        return out


def ask(config: LlmJudgeConfig, prompts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[str]:
    """The judge's raw reply to each prompt, in order (temperature 0, as TrustLLM's `get_res`)."""
    from unicomp.evaluate.endpoint import EndpointConfig, EndpointModel

    endpoint = EndpointModel(EndpointConfig(base_url=config.base_url, model=config.model, api_key_env=config.api_key_env,
                                            concurrency=config.concurrency, max_retries=config.max_retries,
                                            timeout_s=config.timeout_s, chat=True))
    requests = [([{"role": "user", "content": p}], {"max_gen_toks": config.max_tokens, "until": []}) for p in prompts]
    return endpoint.generate_until(requests, progress)
