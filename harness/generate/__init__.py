"""Stage 1, generate: asking the endpoint for answers and storing them.

``client`` (the OpenAI-compatible HTTP client), ``served`` and ``llamaswap`` (what
the endpoint serves), ``local_server`` and ``local_install`` (a llama-server of our
own), ``runner`` (the sweep: cells, seeds, turns, resume; it hands every stored
answer to ``harness.grade``)."""
