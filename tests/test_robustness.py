"""Issue 13, "a night's sweep that nothing can derail": the sweep against servers
that ask it to wait, results directories shared by two writers, killed runs, corrupt
and read-only stores, broken graders found before the first request. Real loopback
HTTP servers, real `sweep` processes, real SQLite files."""

from __future__ import annotations

import pytest

from harness.client import ChatClient
from harness.config import RunConfig
from harness.runner import Sweep, SweepSummary
from harness.store import Store
from mock_server.llm import Reply, ScriptedLLM, scripted_fence
from tests.helpers import HELLO_GO, make_tiny_exam


@pytest.fixture
def exam(tmp_path):
    return make_tiny_exam(tmp_path / "exams")


def _sweep(tmp_path, exam, toolchain, endpoint, waits: list[float], **cfg_kwargs) -> SweepSummary:
    cfg = RunConfig(endpoint=endpoint, models=("m",), exams=(exam.id,), seeds=(1,), out_dir=tmp_path / "out",
                    **{"request_timeout_s": 10, "retries": 2, "retry_backoff_s": 2.0, **cfg_kwargs})
    store = Store(cfg.out_dir)
    try:
        with ChatClient(endpoint, timeout_s=10) as client:
            return Sweep(cfg, store=store, exams=[exam], toolchain=toolchain, client=client,
                         sleep=waits.append).run()
    finally:
        store.close()


@pytest.mark.parametrize("retry_after, waited", [
    ("7", [7.0]),          # longer than the 2 s back-off: the server's word
    ("1", [2.0]),          # shorter: the back-off
    ("86400", [300.0]),    # a day: capped (RunConfig.retry_after_cap_s)
])
def test_retry_after_is_honoured(tmp_path, exam, toolchain, retry_after, waited):
    replies = [Reply(status=429, headers={"Retry-After": retry_after}), Reply(scripted_fence(HELLO_GO))]
    with ScriptedLLM({"m": replies}) as llm:
        waits: list[float] = []
        s = _sweep(tmp_path, exam, toolchain, llm.url, waits)
        assert len(llm.chat_requests()) == 2
    assert s.ok and s.generated == 1
    assert waits == waited
