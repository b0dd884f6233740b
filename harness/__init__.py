"""exam-sweep's library, split by stage (docs/how-it-works.md, "Where each piece lives"):
``generate`` asks the endpoint, ``grade`` scores stored answers, ``report`` reads the
store back, over ``exams``, ``runtime`` and ``store``; ``cli`` serves the command line.

The front door is ``harness.api`` (its ``__all__`` is the public surface, documented
in docs/python-api.md); ``harness.report`` (with ``harness.report.compare`` and
``harness.report.html``) reads a results directory back. Importing ``harness`` loads
nothing else."""
