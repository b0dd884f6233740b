"""exam-sweep's library. The front door is ``harness.api`` (its ``__all__`` is the
public surface, documented in docs/python-api.md); ``harness.report``,
``harness.compare`` and ``harness.html_report`` read a results directory back.
Importing ``harness`` loads nothing else."""
