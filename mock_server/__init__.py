"""Test doubles: a scripted OpenAI-compatible LLM server (``mock_server.llm.ScriptedLLM``,
llama-server shaped JSON) for ``sweep demo`` and the tests. Nothing in ``harness``
imports it but the demo (tests/test_layers.py). An exam's own mock lives in the exam's
directory, in its grader hash: exams/scraper-resilience/mock.py."""
