"""Exams as data, and the kit their checks are written with.

``exam`` (manifest, loading, the grader hash), ``package`` (the one loader of an
exam's Python code), ``scaffold`` (``sweep exams new``), ``checkkit`` (what a
``checks.py`` gets) and ``kit`` (flags, timing, an HTTP source/sink mock)."""
