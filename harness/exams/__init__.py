"""Exams as data, and the kit their checks are written with.

``exam`` (manifest, loading, the grader hash), ``package`` (the one loader of an
exam's Python code), ``checkkit`` (what a ``checks.py`` gets) and ``kit`` (flags,
timing, an HTTP source/sink mock). All of it is in every exam's grader hash, so
what never grades (``sweep exams new``'s skeletons) lives in ``harness.cli``."""
