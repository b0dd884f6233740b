"""The exception tree of exam-sweep.

Every error the library raises on purpose is a ``SweepError``; the CLI turns each
into one actionable line (what failed, where, what to do next) and a non-zero exit.
Faults of the *model* are never exceptions: they are outcomes stored with the
attempt (see ``harness.results.Outcome``).

    SweepError
    ├── ConfigError            bad flags, a corrupt or contradictory sweep file
    ├── ExamError              a broken exam definition (manifest, template, files)
    ├── ToolchainError         no usable Go toolchain, or -race unavailable
    ├── StoreError             results directory unwritable, corrupt, or conflicting
    │   ├── ConflictError      stored cells were made with a different config
    │   └── DirectoryInUse     another process holds the results directory's
    │                          writer lock (its pid is in the message)
    ├── EndpointError          the model endpoint failed (after bounded retries)
    │   ├── EndpointUnreachable   connection refused / DNS / dropped connection
    │   ├── EndpointTimeout       no complete answer within the request timeout
    │   ├── UnknownModel          404 (or llama-swap <= v217's 400) for the model id
    │   ├── EndpointHTTPError     any other non-2xx status, or an error event inside a
    │   │   │                     stream; ``retryable`` for 429/5xx
    │   │   └── ModelLoadFailed   llama-swap could not start the model's server (health
    │   │                         check timed out, command exited): the model is skipped
    │   ├── MalformedResponse     2xx whose body is not the chat-completions shape, or a
    │   │                         stream that ends without a finish_reason
    │   └── ResponseTooLarge      an answer past ``max_response_mb``: reading stopped
    │                             there (not retried: it would come back as large)
    ├── GradingError           our own infrastructure failed while grading
    │                          (never counted against the model)
    └── LocalServerError       `sweep run --local`: no llama-server or model found, or
                               the llama-server we started exited or never became healthy;
                               `sweep local install`: pip failed (the likely cause, what
                               to do, and the log file, in one line)
"""

from __future__ import annotations


class SweepError(Exception):
    """Base class. ``hint`` says what the user can do next."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message as one line, with the hint appended when there is one."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({' '.join(self.hint.split())})"
        return text


class ConfigError(SweepError):
    pass


class ExamError(SweepError):
    pass


class ToolchainError(SweepError):
    pass


class StoreError(SweepError):
    pass


class ConflictError(StoreError):
    pass


class DirectoryInUse(StoreError):
    pass


class EndpointError(SweepError):
    retryable: bool = False
    # The bytes received before a streamed answer failed (dropped, timed out), so the
    # store keeps them; None when nothing arrived or the request was not streamed.
    partial: bytes | None = None


class EndpointUnreachable(EndpointError):
    retryable = True


class EndpointTimeout(EndpointError):
    retryable = True


class UnknownModel(EndpointError):
    retryable = False


class EndpointHTTPError(EndpointError):
    """``retry_after_s``: what the answer's Retry-After header asked for (seconds),
    or None."""

    def __init__(self, message: str, *, status: int, hint: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = status == 429 or status >= 500
        self.retry_after_s = retry_after_s


class ModelLoadFailed(EndpointHTTPError):
    """The swapper answered that the model's server did not start. Not retried in
    the same run: another try would wait the whole health-check time-out again."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, status=status, hint=hint)
        self.retryable = False


class MalformedResponse(EndpointError):
    retryable = True


class ResponseTooLarge(EndpointError):
    retryable = False


class GradingError(SweepError):
    pass


class LocalServerError(SweepError):
    pass
