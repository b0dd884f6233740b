"""The metrics source/sink mock over real loopback HTTP (httpx as the client)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.exams import package as exampkg
from harness.exams.exam import find_exam

_MOCK = exampkg.load_module(find_exam("scraper-resilience"), "mock")   # the exam's own mock (exams/.../mock.py)
AttemptOutcome, Hold, MetricsMock, SinkMode = _MOCK.AttemptOutcome, _MOCK.Hold, _MOCK.MetricsMock, _MOCK.SinkMode
exposition, samples_for, serve = _MOCK.exposition, _MOCK.samples_for, _MOCK.serve


@pytest.fixture
def mock():
    with MetricsMock() as m:
        yield m


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as c:
        yield c


def batch(seq: int, **extra) -> dict:
    samples = [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in samples_for(seq)]
    return {"seq": seq, "scraped_at": "2026-01-01T00:00:00Z", "samples": samples, **extra}


def post_in_thread(url: str, body: dict, timeout: float = 5.0) -> dict:
    out: dict = {}

    def go() -> None:
        try:
            out["status"] = httpx.post(url, json=body, timeout=timeout).status_code
        except httpx.HTTPError as e:
            out["error"] = type(e).__name__

    t = threading.Thread(target=go, daemon=True)
    t.start()
    out["thread"] = t
    return out


def test_source_numbers_scrapes_and_failures_consume_no_number(mock, client):
    r1 = client.get(mock.source_url)
    r2 = client.get(mock.source_url)
    assert r1.status_code == r2.status_code == 200
    assert "scrape_sequence 1\n" in r1.text and "scrape_sequence 2\n" in r2.text
    assert r1.headers["content-type"].startswith("text/plain; version=0.0.4")
    mock.set_source_failing(True)
    assert client.get(mock.source_url).status_code == 503
    mock.set_source_failing(False)
    assert "scrape_sequence 3\n" in client.get(mock.source_url).text
    assert [s.seq for s in mock.scrapes()] == [1, 2, None, 3]
    assert mock.last_seq == 3 and mock.failed_scrapes == 1


def test_exposition_is_the_text_form_of_samples_for():
    text = exposition(7)
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == len(samples_for(7))
    assert 'node_filesystem_avail_bytes{device="/dev/sda1",mountpoint="/mnt/my disk"} ' in text
    assert 'temperature_celsius{sensor="probe \\"a\\""} -3.5' in text
    assert 'http_request_duration_seconds_bucket{le="+Inf"} 34' in text
    assert "process_start_time_seconds 1.7e+09 1700000000000" in text
    for ln in lines:  # values are exact: text -> float gives samples_for's value
        value = float(ln.rsplit("} ", 1)[-1].split()[0]) if "}" in ln else float(ln.split()[1])
        assert value in {s.value for s in samples_for(7)}


def test_sink_accepts_with_204_and_records_typed_attempts(mock, client):
    assert client.post(mock.sink_url, json=batch(1)).status_code == 204
    assert client.post(mock.sink_url, json=batch(1)).status_code == 204
    wrong = batch(2)
    wrong["samples"][1]["value"] += 1
    assert client.post(mock.sink_url, json=wrong).status_code == 204
    attempts = mock.attempts()
    assert [(a.seqs, a.outcome, a.status, a.samples_ok) for a in attempts] == [
        ((1,), AttemptOutcome.ACCEPTED, 204, True),
        ((1,), AttemptOutcome.ACCEPTED, 204, True),
        ((2,), AttemptOutcome.ACCEPTED, 204, False),
    ]
    assert mock.accepted() == {1: 2, 2: 1}
    assert mock.accepted_at(1) is not None and mock.accepted_at(3) is None


def test_sink_reads_arrays_chunked_bodies_and_the_sequence_sample(mock, client):
    assert client.post(mock.sink_url, json=[batch(1), batch(2)]).status_code == 204
    body = json.dumps(batch(3)).encode()
    chunked = client.post(mock.sink_url, content=iter([body[:10], body[10:]]))  # no length: chunked
    assert chunked.status_code == 204
    no_seq = batch(4)
    del no_seq["seq"]
    assert client.post(mock.sink_url, json=no_seq).status_code == 204
    assert mock.accepted() == {1: 1, 2: 1, 3: 1, 4: 1}
    assert client.post(mock.sink_url, content=b"not json").status_code == 400
    assert client.post(mock.sink_url, json={"samples": []}).status_code == 400
    assert [a.outcome for a in mock.attempts()][-2:] == [AttemptOutcome.INVALID] * 2


def test_arrays_and_duplicates_are_recorded(mock, client):
    assert client.post(mock.sink_url, json=batch(1)).status_code == 204
    assert client.post(mock.sink_url, json=[batch(2), batch(3)]).status_code == 204  # accepted, but marked
    assert client.post(mock.sink_url, json=batch(2)).status_code == 204
    assert [a.array for a in mock.attempts()] == [False, True, False]
    assert mock.array_posts() == 1
    assert mock.duplicates() == {2: 2}
    assert mock.snapshot()["duplicates"] == {"2": 2}


def test_fail_after_backlog_takes_the_sink_down_in_the_middle_of_a_flush(mock, client):
    for _ in range(3):
        assert client.get(mock.source_url).status_code == 200  # seqs 1..3 scraped while online
    mock.set_sink(SinkMode.OFFLINE_503)
    for _ in range(5):  # seqs 4..8 scraped while down
        assert client.get(mock.source_url).status_code == 200
    assert client.post(mock.sink_url, json=batch(4)).status_code == 503  # tried during the outage
    mock.fail_after_backlog(2)   # armed while down
    mock.set_sink(SinkMode.ONLINE)
    assert client.get(mock.source_url).status_code == 200  # seq 9: live, not backlog
    assert client.post(mock.sink_url, json=batch(9)).status_code == 204
    assert client.post(mock.sink_url, json=batch(5)).status_code == 204  # never tried before: backlog too
    assert mock.sink_mode is SinkMode.ONLINE
    assert client.post(mock.sink_url, json=batch(4)).status_code == 204  # the 2nd: accepted, then down
    assert mock.sink_mode is SinkMode.OFFLINE_503
    assert client.post(mock.sink_url, json=batch(6)).status_code == 503
    mock.set_sink(SinkMode.ONLINE)
    assert client.post(mock.sink_url, json=batch(6)).status_code == 204  # the trigger fired once
    assert mock.accepted() == {4: 1, 5: 1, 6: 1, 9: 1}
    with pytest.raises(ValueError):
        mock.fail_after_backlog(0)


def test_held_resends_are_counted(mock, client):
    mock.set_sink(SinkMode.OFFLINE_503)
    client.post(mock.sink_url, json=batch(7))
    mock.set_sink(SinkMode.OFFLINE_HANG)
    live = post_in_thread(mock.sink_url, batch(8))
    assert mock.wait(lambda m: m.held_now == 1, 2.0)
    assert mock.held_resends_now == 0
    resend = post_in_thread(mock.sink_url, batch(7))
    assert mock.wait(lambda m: m.held_now == 2, 2.0)
    assert mock.held_resends_now == 1
    mock.set_sink(SinkMode.OFFLINE_503)
    live["thread"].join(2)
    resend["thread"].join(2)
    assert mock.wait(lambda m: m.held_now == 0, 2.0) and mock.held_resends_now == 0
    # the two held requests are answered at once, so they may be recorded in either order
    assert sorted((a.seqs, a.resend) for a in mock.attempts()) == [((7,), False), ((7,), True), ((8,), False)]


def test_a_refused_sink_cuts_a_connection_only_after_the_answer_to_a_recorded_request(mock, client):
    """close_port while the sink is answering a request it already recorded as
    accepted: the client still gets its 204 (else it would send the batch again)."""
    orig = mock._record
    entered, go = threading.Event(), threading.Event()

    def slow_record(fn):
        orig(fn)
        entered.set()
        go.wait(2)

    mock._record = slow_record  # type: ignore[method-assign]
    out = post_in_thread(mock.sink_url, batch(1))
    assert entered.wait(2)
    cut = threading.Thread(target=mock.set_sink, args=(SinkMode.OFFLINE_REFUSE,))
    cut.start()
    time.sleep(0.05)
    go.set()
    out["thread"].join(2)
    cut.join(2)
    mock._record = orig  # type: ignore[method-assign]
    assert out.get("status") == 204, out
    assert mock.accepted() == {1: 1}
    with pytest.raises(httpx.TransportError):
        httpx.post(mock.sink_url, json=batch(2), timeout=2)


def test_offline_503_rejects_and_remembers(mock, client):
    mock.set_sink(SinkMode.OFFLINE_503)
    assert client.post(mock.sink_url, json=batch(5)).status_code == 503
    assert client.get(mock.sink_url).status_code == 503  # health probe
    mock.set_sink(SinkMode.ONLINE)
    assert client.get(mock.sink_url).status_code == 200
    assert mock.rejected() == {5}
    assert mock.attempts()[0].outcome is AttemptOutcome.REJECTED
    assert [s for _, s in mock.health_checks()] == [503, 200]


def test_offline_refuse_closes_the_port_and_cuts_kept_alive_connections(mock, client):
    assert client.post(mock.sink_url, json=batch(1)).status_code == 204  # a kept-alive connection
    mock.set_sink(SinkMode.OFFLINE_REFUSE)
    with pytest.raises(httpx.TransportError):
        client.post(mock.sink_url, json=batch(2))
    with pytest.raises(httpx.ConnectError):
        httpx.post(mock.sink_url, json=batch(2), timeout=2)
    mock.set_sink(SinkMode.ONLINE)  # same port again
    assert client.post(mock.sink_url, json=batch(2)).status_code == 204
    assert mock.accepted() == {1: 1, 2: 1}
    assert client.get(mock.source_url).status_code == 200  # the source was never affected


def test_offline_hang_holds_until_the_mode_changes_then_fails(mock):
    mock.set_sink(SinkMode.OFFLINE_HANG)
    out = post_in_thread(mock.sink_url, batch(3))
    assert mock.wait(lambda m: m.held_now == 1, 2.0)
    time.sleep(0.05)
    assert "status" not in out  # still hanging
    mock.set_sink(SinkMode.ONLINE)
    out["thread"].join(2)
    assert out["status"] == 503
    a = mock.attempts()[0]
    assert (a.outcome, a.held, a.status) == (AttemptOutcome.HUNG, True, 503)
    assert mock.rejected() == {3} and mock.accepted() == {}


def test_a_client_that_gives_up_on_a_hung_request_is_recorded(mock):
    mock.set_sink(SinkMode.OFFLINE_HANG)
    out = post_in_thread(mock.sink_url, batch(4), timeout=0.2)
    out["thread"].join(3)
    assert out["error"] == "ReadTimeout"
    assert mock.wait(lambda m: len(m.attempts()) == 1, 2.0)
    assert mock.attempts()[0].outcome is AttemptOutcome.ABANDONED
    assert mock.held_now == 0 and mock.rejected() == {4}


def test_hold_resends_keeps_only_previously_rejected_batches(mock, client):
    mock.set_sink(SinkMode.OFFLINE_503)
    client.post(mock.sink_url, json=batch(5))
    mock.set_sink(SinkMode.ONLINE)
    mock.set_hold(Hold.RESENDS)
    held = post_in_thread(mock.sink_url, batch(5))
    assert mock.wait(lambda m: m.held_now == 1, 2.0)
    assert mock.first_hold_t is not None
    assert client.post(mock.sink_url, json=batch(6)).status_code == 204  # live batches pass
    assert mock.accepted() == {6: 1}
    mock.release()
    held["thread"].join(2)
    assert held["status"] == 204
    assert mock.accepted() == {5: 1, 6: 1}
    assert [a.held for a in mock.attempts()] == [False, False, True]


def test_hold_all_and_an_abandoning_client(mock):
    mock.set_hold(Hold.ALL)
    out = post_in_thread(mock.sink_url, batch(1), timeout=0.2)
    out["thread"].join(3)
    assert out["error"] == "ReadTimeout"
    assert mock.wait(lambda m: any(a.outcome is AttemptOutcome.ABANDONED for a in m.attempts()), 2.0)
    assert mock.accepted() == {}


def test_wait_wakes_on_new_records_and_times_out(mock, client):
    threading.Timer(0.05, lambda: client.get(mock.source_url)).start()
    started = time.monotonic()
    assert mock.wait(lambda m: m.last_seq >= 1, 5.0)
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    assert not mock.wait(lambda m: m.last_seq >= 99, 0.1)
    assert time.monotonic() - started < 1.0
    assert not mock.wait(lambda m: False, 5.0, alive=lambda: False)


def test_two_mocks_are_independent():
    with MetricsMock() as a, MetricsMock() as b:
        assert a.sink_url != b.sink_url and a.source_url != b.source_url
        a.set_sink(SinkMode.OFFLINE_503)
        assert httpx.post(b.sink_url, json=batch(1)).status_code == 204
        assert httpx.post(a.sink_url, json=batch(1)).status_code == 503


def test_serve_exposes_a_control_api():
    srv = serve()
    try:
        with httpx.Client(timeout=5) as c:
            assert c.post(srv.control_url + "/sink/offline-503").status_code == 200
            assert c.post(srv.mock.sink_url, json=batch(1)).status_code == 503
            assert c.post(srv.control_url + "/sink/online").status_code == 200
            assert c.post(srv.control_url + "/sink/nonsense").status_code == 404
            c.get(srv.mock.source_url)
            records = c.get(srv.control_url + "/records").json()
            assert records["last_seq"] == 1 and records["rejected"] == [1]
            assert records["attempts"][0]["outcome"] == "rejected"
    finally:
        srv.close()


def test_main_runs_standalone_until_interrupted():
    root = Path(__file__).resolve().parents[1]
    p = subprocess.Popen([sys.executable, str(root / "exams" / "scraper-resilience" / "mock.py")], cwd=root,
                         stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        first = p.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("source  http://127.0.0.1:")
        url = first.split()[1]
        assert httpx.get(url, timeout=5).status_code == 200
        p.send_signal(signal.SIGINT)
        assert p.wait(5) == 0
    finally:
        p.kill()
        p.wait()
