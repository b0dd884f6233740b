"""The one frozen run configuration, resolved once and stored with the run.

Precedence: command-line flag > environment variable > sweep file > default (click
applies it in sweep.py; ``harness.cli.sweepfile.resolve`` validates the result). The
defaults of the run settings are this dataclass's. Secrets (the API key) are used
but never stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.wire import Sampling

DEFAULT_SEEDS = (42, 123, 456)
DEFAULT_EXAMS = ("go-basics",)


@dataclass(frozen=True)
class RunConfig:
    endpoint: str
    models: tuple[str, ...]
    exams: tuple[str, ...] = DEFAULT_EXAMS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    sampling: Sampling = field(default_factory=Sampling)
    out_dir: Path = Path("results")
    request_timeout_s: float = 600.0
    retries: int = 3                     # extra tries for retryable endpoint errors
    retry_backoff_s: float = 2.0         # first back-off; doubles each retry
    # A 429/503's Retry-After is waited (instead of a shorter back-off), up to this.
    retry_after_cap_s: float = 300.0
    max_endpoint_errors: int = 3         # consecutive failed cells before the sweep stops
    grading_workers: int = 2
    parallel: int = 1                    # generation requests in flight per model (server slots)
    stream: bool = False                 # stream answers (adds time to first token)
    turns: int = 1                       # answers per cell: repair turns after one without full marks
    # The largest answer read from the endpoint (MiB): past it the attempt is an
    # endpoint error and only its first bytes are stored.
    max_response_mb: int = 32
    api_key: str | None = field(default=None, repr=False)
    # Per-model sampling (sweep-file profiles); a model not listed uses ``sampling``.
    sampling_by_model: dict[str, Sampling] = field(default_factory=dict)
    unload_between_models: bool = False
    config_file: str | None = None           # the sweep file the config was resolved from
    # What each model id runs, from a llama-swap config.yaml: {"path", "models": {id: info}}.
    llama_swap: dict[str, Any] | None = None
    sources: dict[str, str] = field(default_factory=dict)   # setting -> flag | env:NAME | file | default
    # `sweep run --local`: what the llama-server we started ran (binary, model, /props).
    local_server: dict[str, Any] | None = None

    def sampling_for(self, model: str) -> Sampling:
        """The sampling parameters sent with every request to ``model``."""
        return self.sampling_by_model.get(model, self.sampling)

    def to_json(self) -> dict[str, Any]:
        """The config as stored with the run: everything but secrets."""
        d = asdict(self)
        d.pop("api_key")
        d["out_dir"] = str(self.out_dir)
        d["api_key_set"] = self.api_key is not None
        return d


# llama.cpp reads ``seed`` as a uint32 (0 .. 2**32 - 1), and LLAMA_DEFAULT_SEED
# (0xFFFFFFFF, which -1 becomes once cast) means "pick a random seed": a sweep's
# seeds must be reproducible, so 2**32 - 1 is refused with the negative numbers.
SEED_MIN, SEED_MAX = 0, 2**32 - 2


def seed_problem(seed: int) -> str | None:
    """Why ``seed`` cannot be sent, or None when it can."""
    if not SEED_MIN <= seed <= SEED_MAX:
        return (f"seed {seed} is outside {SEED_MIN}..{SEED_MAX}: llama.cpp takes a 32-bit seed and "
                "reads -1 (= 4294967295) as 'pick a random seed'")
    return None


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
    except ValueError as e:
        raise ConfigError(f"--seeds {text!r} is not a comma-separated list of integers",
                          hint="e.g. --seeds 42,123,456") from e
    if not seeds:
        raise ConfigError("--seeds is empty", hint="e.g. --seeds 42,123,456")
    for seed in seeds:
        if (why := seed_problem(seed)) is not None:
            raise ConfigError(f"--seeds: {why}", hint="e.g. --seeds 42,123,456")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} repeats a seed")
    return seeds


def model_id_problem(model: str) -> str | None:
    """Why ``model`` is not a usable model id (empty, surrounding blanks, a control
    character such as a newline), or None."""
    if not model.strip():
        return "an empty model id"
    bad = next((c for c in model if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        return f"model id {model!r} contains a control character ({bad!r})"
    if model != model.strip():
        return f"model id {model!r} has leading or trailing blanks"
    return None
