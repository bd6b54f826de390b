"""``python -m benchmarks.step_profile``: the per-op profile of a training step that docs/benchmarks.md quotes."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _profile(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.step_profile", *args], capture_output=True, text=True,
                          cwd=REPO,  # benchmarks/ is run from a checkout, not installed
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip


@pytest.mark.slow
@pytest.mark.per_backend  # each backend has its own profiler
def test_step_profile_names_the_ops_of_this_backend():
    import keras

    backend = keras.backend.backend()
    proc = _profile("--limit", "600", "--rows", "40")
    if backend == "tensorflow" and importlib.util.find_spec("jax") is None:  # the tensorflow env: no jax
        assert proc.returncode == 1 and "reads the trace with jax's XSpace reader: install jax too" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    if backend == "tensorflow":
        assert "Conv2DBackpropFilter" in proc.stdout and "Conv2DBackpropInput" in proc.stdout
    elif backend == "torch":
        assert "aten::convolution_backward" in proc.stdout and "aten::mkldnn_convolution" in proc.stdout
    else:  # jax: XLA's fused ops mapped back to the layers that asked for them
        assert "thread-ms per step of 300 images" in proc.stdout
        busy = float(re.search(r"cores busy on average: ([0-9.]+) of", proc.stdout).group(1))
        assert 0 < busy <= (os.cpu_count() or 1) + 0.05  # thread time within the step's wall time
        assert "jvp(conv2)/conv_general_dilated" in proc.stdout and "transpose(jvp(conv2))/dot_general" in proc.stdout
