"""Stage one: PyTorch to ONNX.

Modules: ``sources`` (model specs), ``inputs`` (input specs, dynamic dims, npz), ``exporters``
(dynamo / TorchScript with fallback), ``torchlib_cache`` (the dynamo exporter's registry, built
once per process), ``source_info`` (PyTorch source lines on nodes),
``passes`` (rewrites adapter), ``simplify`` (onnxsim), ``validate`` (checker, shape inference,
onnxruntime parity), ``report`` (JSON report, graph statistics), ``atomic`` (atomic writes),
``result`` (:class:`ExportResult`).  Orchestration lives in :mod:`pipeline.api`.
"""
