"""The exam kit: the generic controllable HTTP mock with an exam's own payload and
parser (over real loopback HTTP), deadlines that scale, and -h flag parsing."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from harness.exams import kit as examkit
from harness.exams.kit import AttemptOutcome, Hold, HttpMock, Parsed, SinkMode


def _payload(seq: int) -> str:
    return json.dumps({"seq": seq, "watts": 100 * seq})


def _parse(body: bytes) -> Parsed:
    try:
        obj = json.loads(body)
    except ValueError:
        return Parsed(())
    if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int):
        return Parsed(())
    return Parsed((obj["seq"],), obj.get("watts") == 100 * obj["seq"])


@pytest.fixture
def mock():
    with HttpMock(_payload, _parse, source_path="/inverter", sink_path="/ingest",
                  content_type="application/json") as m:
        yield m


def test_source_serves_the_exams_payload_by_sequence(mock):
    with httpx.Client(timeout=5) as c:
        assert c.get(mock.source_url).json() == {"seq": 1, "watts": 100}
        mock.set_source_failing(True)
        assert c.get(mock.source_url).status_code == 503
        mock.set_source_failing(False)
        r = c.get(mock.source_url)
    assert r.json()["seq"] == 2 and r.headers["content-type"] == "application/json"
    assert [s.seq for s in mock.scrapes()] == [1, None, 2] and mock.last_seq == 2


def test_sink_modes_and_records(mock):
    with httpx.Client(timeout=5) as c:
        assert c.post(mock.sink_url, json={"seq": 1, "watts": 100}).status_code == 204
        assert c.post(mock.sink_url, json={"seq": 2, "watts": 7}).status_code == 204     # content wrong
        assert c.post(mock.sink_url, content=b"nonsense").status_code == 400
        mock.set_sink(SinkMode.OFFLINE_503)
        assert c.post(mock.sink_url, json={"seq": 3, "watts": 300}).status_code == 503
        mock.set_sink(SinkMode.OFFLINE_REFUSE)
        # The kept-alive connection is cut: the post fails, as "server disconnected" or, when
        # the client saw the cut before reusing it, as a refused new connection ...
        with pytest.raises((httpx.NetworkError, httpx.RemoteProtocolError)):
            c.post(mock.sink_url, json={"seq": 4, "watts": 400})
        with httpx.Client(timeout=5) as fresh, pytest.raises(httpx.ConnectError):   # ... and new ones are refused
            fresh.post(mock.sink_url, json={"seq": 4, "watts": 400})
        mock.set_sink(SinkMode.ONLINE)
        assert c.post(mock.sink_url, json={"seq": 3, "watts": 300}).status_code == 204
    got = [(a.seqs, a.outcome, a.content_ok) for a in mock.attempts()]
    assert got == [((1,), AttemptOutcome.ACCEPTED, True), ((2,), AttemptOutcome.ACCEPTED, False),
                   ((), AttemptOutcome.INVALID, False), ((3,), AttemptOutcome.REJECTED, True),
                   ((3,), AttemptOutcome.ACCEPTED, True)]
    assert mock.attempts()[-1].resend and mock.rejected() == {3}


def test_hang_and_hold_until_released(mock):
    mock.set_sink(SinkMode.OFFLINE_HANG)
    status: list[int] = []

    def post(seq: int) -> None:
        with httpx.Client(timeout=10) as c:
            status.append(c.post(mock.sink_url, json={"seq": seq, "watts": 100 * seq}).status_code)

    t = threading.Thread(target=post, args=(1,))
    t.start()
    assert mock.wait(lambda m: m.held_now == 1, 5)
    mock.set_sink(SinkMode.ONLINE)          # a hung request is answered 503 when the mode changes
    t.join(5)
    mock.set_hold(Hold.ALL)
    t = threading.Thread(target=post, args=(2,))
    t.start()
    assert mock.wait(lambda m: m.held_now == 1, 5)
    time.sleep(0.05)
    assert status == [503]
    mock.release()
    t.join(5)
    assert status == [503, 204]
    assert [(a.outcome, a.held) for a in mock.attempts()] == [(AttemptOutcome.HUNG, True),
                                                              (AttemptOutcome.ACCEPTED, True)]


def test_deadlines_scale(monkeypatch):
    monkeypatch.setenv(examkit.TIME_SCALE_ENV, "3")
    assert examkit.scaled(2.0) == 6.0
    d = examkit.Deadline.after(1.0)
    assert 2.5 < d.left() <= 3.0 and not d.passed()
    monkeypatch.setenv(examkit.TIME_SCALE_ENV, "zero")
    assert examkit.time_scale() == 1.0


def test_parse_go_help():
    text = ("Usage of scraper:\n"
            "  -buffer-size int\n    \tbatches kept while the sink is down (default 100)\n"
            "  -sink string\n    \twhere batches go (default \"http://x/write\")\n"
            "  -v\tverbose\n  -h\thelp\n")
    flags = {f.name: f for f in examkit.parse_help(text)}
    assert set(flags) == {"buffer-size", "sink", "v"}
    assert flags["buffer-size"].type_word == "int" and flags["buffer-size"].default == "100"
    assert flags["sink"].default == "http://x/write" and flags["sink"].usage == "where batches go"
