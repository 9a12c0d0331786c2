"""Great Expectations is imported without scipy.stats and altair, which run on first use."""

from __future__ import annotations

import subprocess
import sys

from ct_pipelines_tests.support.served import REPO

SCRIPT = """
import sys
from ct_pipelines.core.imports import import_great_expectations
gx = import_great_expectations()
assert type(sys.modules["scipy.stats"]).__name__ == "_Deferred", "scipy.stats ran at import"
assert type(sys.modules["altair"]).__name__ == "_Deferred", "altair ran at import"
assert gx.expectations.ExpectColumnKLDivergenceToBeLessThan is not None
from scipy import stats
assert abs(stats.entropy([0.5, 0.5]) - 0.6931471805599453) < 1e-12  # the real module, on first use
assert type(sys.modules["scipy.stats"]).__name__ == "module"
import scipy.stats.distributions  # a submodule of a deferred package imports too
print("ok")
"""


def test_great_expectations_defers_scipy_stats_and_altair_until_used():
    # A fresh interpreter: the test process may have imported GX (or scipy.stats) already.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
