"""The results store: one SQLite file per results directory (``db``), every read
query as typed rows (``queries``) and the one-writer lock (``lock``).

Depends on nothing of the harness but the shared types."""
