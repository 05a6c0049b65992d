"""Test-run settings shared by every test."""

import os

# Passive OpenMP waiting: two pytest workers on two cores must not spin against each other
# (see pipeline/cli/common.py).  Set before torch is imported by any test module.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
