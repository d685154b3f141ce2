"""What `unicomp eval` and `unicomp compress` are asked to do, validated before any work.

One validation layer for command-line requests: numbers in range, dtype and device known,
output locations writable and safe (outputs.py). A failure is one line naming the flag, so
`--batch-size 0` is refused in a second instead of crashing inside the calibration loop.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unicomp.errors import UnicompError
from unicomp.models.options import normalize_dtype


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: ClassVar[str] = ""

    @classmethod
    def of(cls, **values: Any):
        """The validated request, or a one-line error naming the first bad flag."""
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            inner = err.get("ctx", {}).get("error")
            if isinstance(inner, UnicompError):
                raise inner from None
            flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "(request)"
            msg = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            raise UnicompError(f"{flag} {shown!r}: {msg[0].lower() + msg[1:]}",
                               f"see `unicomp {cls.command} --help`") from None

    @field_validator("dtype", check_fields=False)
    @classmethod
    def _dtype(cls, value: str) -> str:
        return normalize_dtype(value)


class EvalRequest(Request):
    command: ClassVar[str] = "eval"
    model: str = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(None, gt=0)
    batch_size: int = Field(16, gt=0)
    dtype: str = "float32"
    device: str = "cpu"
    num_fewshot: int | None = Field(None, ge=0)
    store: str = "unicomp-results/unicomp.sqlite"
    output: str | None = None
    data_dir: str | None = None
    data_sources: list[str] | None = None
    trust_remote_code: bool = False
    strict_sources: bool = False
    # generation tasks answered by an OpenAI-compatible server (EndpointConfig fields), else in-process
    endpoint: dict[str, Any] | None = None
    # answer budget of every generation task (default: each task's protocol)
    max_gen_toks: int | None = Field(None, gt=0)
    # an LLM judge (LlmJudgeConfig fields) for the TrustLLM subtasks TrustLLM judges with GPT-4
    judge: dict[str, Any] | None = None
    # TrustLLM's refusal classifier (ClassifierJudgeConfig fields) for its refuse-to-answer subtasks
    refusal_classifier: dict[str, Any] | None = None


class CompressRequest(Request):
    command: ClassVar[str] = "compress"
    model: str = Field(min_length=1)
    method: str = Field(min_length=1)
    out: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    calibration: str = "c4"
    calibration_file: str | None = None
    n_samples: int = Field(128, gt=0)
    seq_len: int = Field(512, gt=1)
    seed: int = 0
    batch_size: int = Field(8, gt=0)
    storage: str = "auto"
    dtype: str = "float32"
    device: str = "cpu"
    overwrite: bool = False
    data_dir: str | None = None
    compute_dtype: str | None = None

    @field_validator("compute_dtype")
    @classmethod
    def _compute_dtype(cls, value: str | None) -> str | None:
        return None if value is None else normalize_dtype(value)

    @model_validator(mode="after")
    def _preset(self) -> "CompressRequest":
        """A preset (awq-w4a16, ...) becomes its method and options, as in run configs."""
        from unicomp.compress.presets import resolve

        self.method, self.options = resolve(self.method, self.options)
        return self
