"""What only the command line needs: the sweep file and the resolution of a run's
settings, flag > environment > file > default (``sweepfile``), the live progress
line (``progress``), ``sweep demo`` (``demo``), ``sweep exams new``'s exam skeletons
(``scaffold``) and the generated CLI reference (``docgen``). Nothing else in the harness imports this package."""
