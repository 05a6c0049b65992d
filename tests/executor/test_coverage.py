"""Guard: every core MIL op of coremltools has a kernel at every opset it exists in, and a test.

``const`` and ``_const_symbolic`` are evaluated by the runner itself (their value is the op's
``val``), so they need no kernel; they are still exercised by every program in the tests.
Opsets are checked from iOS15 on: ML Programs need iOS15 or newer, and coremltools' iOS13/iOS14
opsets are the iOS15 op definitions.
"""

from __future__ import annotations

import re
from pathlib import Path

from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

from pipeline.executor import kernels  # noqa: F401  (registers the kernels)
from pipeline.executor.kernels.registry import KERNELS
from pipeline.executor.runner import RUNNER_OPS

TEST_DIR = Path(__file__).parent
# The coremltools dialect op the PyTorch frontend emits for stateful models.
DIALECT_OPS = {"coreml_update_state": (18,)}


def _core_ops() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name, by_target in SSAOpRegistry.core_ops.items():
        opsets = sorted({max(int(target.value) + 9, 15) for target in by_target})
        found[name] = opsets
    return found


def test_registry_lists_the_168_core_ops():
    assert len(SSAOpRegistry.core_ops) == 168


def test_every_core_op_has_a_kernel_at_each_of_its_opsets():
    missing = [
        f"{name}@iOS{opset}"
        for name, opsets in {**_core_ops(), **DIALECT_OPS}.items()
        if name not in RUNNER_OPS
        for opset in opsets
        if KERNELS.lookup(name, version=opset) is None
    ]
    assert not missing, f"{len(missing)} ops lack kernels: {missing}"


def test_kernels_start_no_later_than_the_op():
    late = []
    for name, opsets in {**_core_ops(), **DIALECT_OPS}.items():
        versions = KERNELS.versions(name)
        if versions and versions[0].since > opsets[0]:
            late.append(f"{name}: op from iOS{opsets[0]}, kernel from iOS{versions[0].since}")
    assert not late, late


def test_every_core_op_is_built_in_some_executor_test():
    text = "\n".join(p.read_text() for p in sorted(TEST_DIR.glob("test_*.py")))
    used = set(re.findall(r"\bmb\.([A-Za-z_0-9]+)\(", text))
    untested = sorted(n for n in {**_core_ops(), **DIALECT_OPS} if n not in used)
    assert not untested, f"{len(untested)} ops never built as mb.<op>( in tests/executor: {untested}"
