"""``python -m streams worker``: the Faust command line for this app."""

import os
import sys

# Before numpy loads OpenBLAS: the worker's matrix products (retrieval, ranking) are small
# and run beside the encoder's own thread pool, so more BLAS threads only fight it and the
# event loop for the same cores (measured: 1.5-2x the CPU per top-k search on 2 shared
# cores). Set OPENBLAS_NUM_THREADS to choose otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from streams.agents import app, settings  # noqa: E402 - after the thread setting above

if __name__ == "__main__":
    if settings.metrics.log_format == "json":
        # Faust's banner and progress lines are plain text on stdout: in this format stdout
        # carries JSON log lines only (the banner's facts are in the log lines anyway)
        sys.argv.insert(1, "--quiet")
    app.main()
