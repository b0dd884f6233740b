"""Flag mapping of the scraper-resilience exam: which flag plays which role, read
from real and realistic ``-h`` outputs (the GO_* texts were printed by Go 1.27's
``flag`` package for the flag sets named)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "exams" / "scraper-resilience" / "flagmap.py"
_spec = importlib.util.spec_from_file_location("_test_scraper_flagmap", _PATH)
assert _spec is not None and _spec.loader is not None
flagmap = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = flagmap
_spec.loader.exec_module(flagmap)

Role = flagmap.Role
Unit = flagmap.Unit

# The reference solution's own -h output.
GO_REFERENCE = 'Usage of /tmp/sweep-x/answer:\n  -buffer-size int\n    \tmaximum number of batches held while the sink is unreachable (0 disables buffering) (default 100)\n  -interval duration\n    \ttime between scrapes (default 1s)\n  -sink URL\n    \tURL that batches are POSTed to (default "http://127.0.0.1:9091/write")\n  -source URL\n    \tURL of the metrics source (Prometheus text format) (default "http://127.0.0.1:9100/metrics")\n  -timeout duration\n    \ttimeout of each HTTP request (default 5s)\n'

GO_CAMEL = 'Usage of /tmp/sweep-x/answer:\n  -bufferSize int\n    \tmax buffered batches (default 100)\n  -flushIntervalMs int\n    \thow often to retry flushing the buffer (ms) (default 500)\n  -intervalMs int\n    \tscrape interval in milliseconds (default 1000)\n  -sinkURL string\n    \twhere to push (default "http://localhost:8428/api/v1/import")\n  -sourceURL string\n    \tmetrics endpoint (default "http://localhost:9100/metrics")\n  -timeoutMs int\n    \tHTTP timeout in milliseconds (default 5000)\n  -v\tverbose logging\n'

GO_RENAMED = 'Usage of /tmp/sweep-x/answer:\n  -debug\n    \tdebug output\n  -http-timeout duration\n    \tper-request timeout (default 5s)\n  -max-backoff duration\n    \tupper bound of the retry backoff (default 30s)\n  -max-buffer int\n    \tmaximum batches kept in memory while the sink is down (default 1000)\n  -max-retries int\n    \tretries per batch before giving up (default 5)\n  -retry-interval duration\n    \thow often the flusher retries (default 2s)\n  -scrape-interval duration\n    \thow often to scrape (default 1s)\n  -shutdown-timeout duration\n    \thow long to wait for in-flight work on exit (default 10s)\n  -sink-url string\n    \tURL to POST batches to (default "http://127.0.0.1:9091/write")\n  -source-url string\n    \tURL to scrape (default "http://127.0.0.1:9100/metrics")\n'

GO_SECONDS = 'Usage of /tmp/sweep-x/answer:\n  -buffer-size int\n    \tbuffer size (default 100)\n  -interval int\n    \tscrape interval in seconds (default 1)\n  -sink string\n    \tsink URL (default "http://127.0.0.1:9091/write")\n  -source string\n    \tsource URL (default "http://127.0.0.1:9100/metrics")\n  -timeout int\n    \ttimeout (seconds) (default 5)\n'

GO_CUSTOM = 'Usage of /tmp/sweep-x/answer:\n  -buffer batches\n    \thow many batches to keep (default 50)\n  -interval value\n    \tscrape interval (default 1s)\n  -label value\n    \textra label k=v (repeatable)\n  -sink url\n    \tsink url (default "http://127.0.0.1:9091/write")\n  -source url\n    \tsource url (default "http://127.0.0.1:9100/metrics")\n  -timeout float\n    \trequest timeout in seconds (default 2.5)\n'

GO_USAGE = 'scraper - resilient metrics scraper\n\nUsage: /tmp/sweep-x/answer [flags]\n\nFlags:\n  -buffer-size int\n    \tmaximum buffered batches\n    \t(0 disables buffering) (default 100)\n  -interval duration\n    \tscrape interval (default 1s)\n  -sink string\n    \tsink URL (default "http://127.0.0.1:9091/write")\n  -source string\n    \tsource URL (default "http://127.0.0.1:9100/metrics")\n  -timeout duration\n    \tHTTP timeout (default 5s)\n\nExample:\n  scraper -source http://host:9100/metrics -sink http://sink/write\n'

GO_NOBUFFER = 'Usage of /tmp/sweep-x/answer:\n  -buffer-size duration\n    \toops: wrong type (default 1s)\n  -interval duration\n    \tscrape interval (default 1s)\n  -sink string\n    \tsink URL (default "http://127.0.0.1:9091/write")\n  -source string\n    \tsource URL (default "http://127.0.0.1:9100/metrics")\n  -timeout duration\n    \tHTTP timeout (default 5s)\n'


VALUES = flagmap.Values(source="http://127.0.0.1:1/metrics", sink="http://127.0.0.1:2/write",
                        interval_s=0.025, timeout_s=2.0, buffer=5)


def mapping_of(text: str):
    return flagmap.map_flags(flagmap.parse_help(text))


def roles(text: str) -> dict[str, list[str]]:
    return {r.value: [b.flag.name for b in bs] for r, bs in mapping_of(text).bindings.items()}


def test_go_format_is_parsed_with_types_usage_and_defaults():
    specs = {s.name: s for s in flagmap.parse_help(GO_REFERENCE)}
    assert set(specs) == {"buffer-size", "interval", "sink", "source", "timeout"}
    assert specs["source"].type_word == "URL"
    assert specs["source"].kind is flagmap.Kind.STRING          # backquoted `URL`, quoted default
    assert specs["source"].default == "http://127.0.0.1:9100/metrics"
    assert specs["interval"].kind is flagmap.Kind.DURATION
    assert specs["interval"].default == "1s"
    assert specs["buffer-size"].kind is flagmap.Kind.INT
    assert specs["buffer-size"].usage.endswith("(0 disables buffering)")


def test_reference_uses_the_prompt_names():
    m = mapping_of(GO_REFERENCE)
    assert all(b.how == "preferred" for bs in m.bindings.values() for b in bs)
    eff = m.argv(VALUES)
    assert eff.argv == ("-source=http://127.0.0.1:1/metrics", "-sink=http://127.0.0.1:2/write",
                        "-interval=25ms", "-timeout=2s", "-buffer-size=5")
    assert eff.flush_s is None
    assert m.describe()["roles"]["buffer"] == [{"flag": "-buffer-size", "unit": "count", "how": "preferred"}]


def test_one_letter_bool_and_camel_case_millisecond_flags():
    m = mapping_of(GO_CAMEL)
    assert roles(GO_CAMEL) == {"source": ["sourceURL"], "sink": ["sinkURL"], "buffer": ["bufferSize"],
                               "interval": ["intervalMs"], "timeout": ["timeoutMs"], "flush": ["flushIntervalMs"]}
    assert "-v" in m.flags_seen
    eff = m.argv(VALUES)
    assert "-intervalMs=25" in eff.argv and "-timeoutMs=2000" in eff.argv and "-flushIntervalMs=25" in eff.argv


def test_renamed_flags_and_every_retry_duration_get_the_flush_value():
    r = roles(GO_RENAMED)
    assert r["source"] == ["source-url"] and r["sink"] == ["sink-url"]
    assert r["interval"] == ["scrape-interval"]
    assert r["timeout"] == ["http-timeout"]            # not -shutdown-timeout
    assert r["buffer"] == ["max-buffer"]
    assert sorted(r["flush"]) == ["max-backoff", "retry-interval"]   # not -max-retries (a count)
    eff = mapping_of(GO_RENAMED).argv(VALUES)
    assert "-retry-interval=25ms" in eff.argv and "-max-backoff=25ms" in eff.argv
    assert not any(a.startswith(("-max-retries", "-shutdown-timeout", "-debug")) for a in eff.argv)


def test_whole_second_interval_cannot_be_mapped():
    m = mapping_of(GO_SECONDS)
    assert m.bindings[Role.INTERVAL][0].unit is Unit.SECONDS_INT
    with pytest.raises(flagmap.FlagError, match="whole seconds") as e:
        m.argv(VALUES)
    assert e.value.role is Role.INTERVAL


def test_whole_second_timeout_is_rounded_up_and_reported():
    text = GO_REFERENCE.replace("-timeout duration\n    \ttimeout of each HTTP request (default 5s)",
                                "-timeout int\n    \trequest timeout in seconds (default 5)")
    eff = mapping_of(text).argv(flagmap.Values("s", "k", interval_s=0.025, timeout_s=0.3))
    assert "-timeout=1" in eff.argv
    assert eff.timeout_s == 1.0


def test_custom_value_flag_float_seconds_and_backquoted_type_words():
    m = mapping_of(GO_CUSTOM)
    assert roles(GO_CUSTOM) == {"source": ["source"], "sink": ["sink"], "buffer": ["buffer"],
                                "interval": ["interval"], "timeout": ["timeout"]}   # -label (flag.Func) unused
    assert m.bindings[Role.INTERVAL][0].unit is Unit.DURATION   # `value` with default 1s
    assert m.bindings[Role.TIMEOUT][0].unit is Unit.SECONDS     # float64 in seconds
    eff = m.argv(VALUES)
    assert "-timeout=2" in eff.argv and "-buffer=5" in eff.argv and "-interval=25ms" in eff.argv


def test_custom_usage_text_around_the_defaults():
    assert roles(GO_USAGE) == {"source": ["source"], "sink": ["sink"], "buffer": ["buffer-size"],
                               "interval": ["interval"], "timeout": ["timeout"]}
    spec = {s.name: s for s in flagmap.parse_help(GO_USAGE)}["buffer-size"]
    assert spec.default == "100" and "(0 disables buffering)" in spec.usage


def test_wrong_type_for_the_buffer_flag_is_explained():
    m = mapping_of(GO_NOBUFFER)
    assert not m.has(Role.BUFFER)
    with pytest.raises(flagmap.FlagError, match="-buffer-size has type duration"):
        m.argv(VALUES)
    # checks that leave the buffer at its default still run
    assert m.argv(flagmap.Values("s", "k", 0.025, 2.0, buffer=None)).argv[-1] == "-timeout=2s"


def test_missing_buffer_flag_names_what_was_looked_for():
    starter = GO_REFERENCE.split("  -interval")[0].split("\n")[0] + "\n  -interval" + GO_REFERENCE.split(
        "  -interval", 1)[1]
    m = mapping_of(starter)
    assert set(m.problems) == {Role.BUFFER}
    assert "looked for -buffer-size" in m.problems[Role.BUFFER]
    assert "-h lists: -interval duration -sink URL -source URL -timeout duration" in m.problems[Role.BUFFER]


@pytest.mark.parametrize("text, expected", [
    # hand-written one-line usage (flag.Usage printing its own table)
    ("Usage: scraper [options]\n  -source string     metrics URL\n  -sink string       batch URL\n"
     "  -interval duration scrape period\n  -timeout duration  request timeout\n  -buffer-size int   max batches\n",
     {"source": ["source"], "sink": ["sink"], "interval": ["interval"], "timeout": ["timeout"],
      "buffer": ["buffer-size"]}),
    # GNU-style double dashes with = and angle brackets
    ("Options:\n  --source=<url>       metrics URL\n  --sink=<url>         batch URL\n"
     "  --interval=<duration>  scrape period (default 1s)\n  --timeout=<duration>   (default 5s)\n"
     "  --queue-size=<int>   max batches (default 64)\n",
     {"source": ["source"], "sink": ["sink"], "interval": ["interval"], "timeout": ["timeout"],
      "buffer": ["queue-size"]}),
    # Prometheus-flavoured names, two timeouts, a delay in ms, a count that is not a flush interval
    ("Usage of x:\n  -target string\n    \tscrape target (default \"http://localhost:9100/metrics\")\n"
     "  -remote-write-url string\n    \tremote write endpoint (default \"http://localhost:9091/write\")\n"
     "  -scrape-interval duration\n    \t(default 15s)\n"
     "  -scrape-timeout duration\n    \t(default 10s)\n  -write-timeout duration\n    \t(default 10s)\n"
     "  -capacity int\n    \tbatches kept while the sink is down (default 500)\n"
     "  -retry-delay-ms int\n    \tdelay between flush attempts (default 1000)\n"
     "  -batch-size int\n    \tsamples per request (default 1000)\n  -retries int\n    \t(default 3)\n",
     {"source": ["target"], "sink": ["remote-write-url"], "interval": ["scrape-interval"],
      "timeout": ["scrape-timeout", "write-timeout"], "buffer": ["capacity"], "flush": ["retry-delay-ms"]}),
    # a flush interval flag next to the prompt's names
    ("Usage of x:\n  -buffer-size int\n    \t(default 100)\n  -flush-interval duration\n    \t(default 1s)\n"
     "  -interval duration\n    \t(default 1s)\n  -sink string\n    \t\n  -source string\n    \t\n"
     "  -timeout duration\n    \t(default 5s)\n",
     {"source": ["source"], "sink": ["sink"], "interval": ["interval"], "timeout": ["timeout"],
      "buffer": ["buffer-size"], "flush": ["flush-interval"]}),
    # metrics-url / push-url pair
    ("Usage of x:\n  -metrics-url string\n    \t(default \"http://a/metrics\")\n"
     "  -push-url string\n    \t(default \"http://b/write\")\n  -every duration\n    \t(default 1s)\n"
     "  -request-timeout duration\n    \t(default 5s)\n  -max-batches int\n    \t(default 10)\n",
     {"source": ["metrics-url"], "sink": ["push-url"], "interval": ["every"], "timeout": ["request-timeout"],
      "buffer": ["max-batches"]}),
])
def test_realistic_renamings(text, expected):
    assert roles(text) == expected


def test_batch_size_is_not_a_buffer():
    text = ("Usage of x:\n  -source string\n    \t\n  -sink string\n    \t\n  -interval duration\n    \t\n"
            "  -timeout duration\n    \t\n  -batch-size int\n    \t(default 100)\n")
    assert not mapping_of(text).has(Role.BUFFER)


def test_empty_help_assumes_the_prompt_names():
    m = mapping_of("")
    assert m.assumed and m.describe()["assumed_prompt_names"] is True
    assert m.argv(VALUES).argv[-1] == "-buffer-size=5"


def test_flag_errors_from_go_are_not_flags():
    text = "flag provided but not defined: -h\nUsage of x:\n  -source string\n    \tsrc\n"
    assert [s.name for s in flagmap.parse_help(text)] == ["source"]


def test_go_durations():
    d = flagmap._go_duration
    assert (d(0.025), d(2.0), d(0.3), d(0.0105)) == ("25ms", "2s", "300ms", "10500us")
