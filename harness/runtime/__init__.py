"""How this machine runs code: one subprocess helper (``proc``), the sandbox and its
cgroups (``sandbox``), the Go toolchain and build cache (``gotool``), the machine
settings (``machine``) and what a run records of the host (``host``).

Depends on nothing of the harness but the shared types (``harness.errors``)."""
