"""Stage 2, grade: a grade is a function of the stored answer and the exam.

``answers`` (the entry point: classify, extract, grade), ``extract`` (the Go code in
an answer), ``grading`` and ``graders`` with one grader per kind (``stdio``,
``checks``, ``gotest``), ``driver`` (the sandboxed process that runs an exam's
checks), ``feedback`` (repair turns), ``validate`` (proving an exam's grader) and
``regrade``. Never imports ``harness.generate``: this whole package is in every
exam's grader hash (``harness.exams.exam.grading_modules``)."""
