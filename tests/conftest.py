import os

# One BLAS thread per process: the small dense problems in the tests slow down many times
# when OpenBLAS threads compete for the two cores (measured: 4 ms against 165 ms for one
# 12-parameter L-BFGS-B run). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
