"""Resampling ops: antialiased bicubic/bilinear upsampling.

Found by trying (torch 2.14.1, opset 18/20):

* ``aten::_upsample_bicubic2d_aa`` / ``aten::_upsample_bilinear2d_aa``
  (``F.interpolate(..., antialias=True)``): TorchScript fails (``UnsupportedOperatorError:
  Exporting the operator 'aten::_upsample_bicubic2d_aa' to ONNX opset version 18 is not
  supported``); dynamo exports ``Resize`` fine.
* ``F.grid_sample`` on 5-D input: TorchScript fails at opset <= 19 (``OnnxExporterError:
  Unsupported: ONNX export of operator GridSample with 5D volumetric input``) but exports
  ``GridSample`` at opset 20, as dynamo does; no standard op exists below 20, so not covered.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pipeline.errors import ExportError
from symbolics._common import builtin, const, ints, legacy_ints, legacy_shape, op, static_shape


# -- antialiased upsampling ------------------------------------------------------------------
def _aa_sizes(
    shape: list[int], output_size: Any, scales: Any, what: str
) -> list[int]:
    """Output [N, C, H, W] from the explicit size or floor(in * scale) per spatial axis."""
    if output_size is not None and len(list(output_size)) == 2:
        return shape[:2] + [int(s) for s in output_size]
    if scales is not None and len(list(scales)) == 2:
        return shape[:2] + [math.floor(d * float(s)) for d, s in zip(shape[2:], scales)]
    raise ExportError(f"symbolics: {what} has neither output_size nor scale_factors; "
                      "pass size= or scale_factor= to F.interpolate")


def _aa_attrs(mode: str, align_corners: bool) -> dict[str, Any]:
    """Resize attributes reproducing torch's antialiased kernels.

    torch's AA kernels stretch the filter by the downscale factor (ONNX ``antialias=1``), use
    Keys' a=-0.5 for cubic (not Resize's default -0.75) and drop taps outside the input,
    renormalising the rest (``exclude_outside=1``).
    """
    return {
        "mode": mode,
        "antialias": 1,
        "coordinate_transformation_mode": "align_corners" if align_corners else "half_pixel",
        "cubic_coeff_a": -0.5,
        "exclude_outside": 1,
    }


def _make_aa(mode: str, op_name: str) -> None:
    what = f"aten::{op_name}"

    def legacy(g: Any, input: Any, output_size: Any, align_corners: Any, scales: Any) -> Any:
        sizes = _aa_sizes(legacy_shape(input, what), const(output_size, "is"),
                          const(scales, "fs"), what)
        empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
        attrs = {f"{k}_{'s' if isinstance(v, str) else 'f' if isinstance(v, float) else 'i'}": v
                 for k, v in _aa_attrs(mode, bool(const(align_corners, "b"))).items()}
        return g.op("Resize", input, empty, empty, legacy_ints(g, sizes), **attrs)

    def dynamo(
        input: Any, output_size: Any, align_corners: bool, scales_h: Any = None,
        scales_w: Any = None,
    ) -> Any:
        # .default passes (scales_h, scales_w); .vec passes scale_factors as the 4th argument.
        scales = scales_h if isinstance(scales_h, (list, tuple)) else (
            None if scales_h is None or scales_w is None else [scales_h, scales_w])
        sizes = _aa_sizes(static_shape(input, what), output_size, scales, what)
        return op.Resize(input, None, None, ints(sizes), **_aa_attrs(mode, bool(align_corners)))

    dynamo.__name__ = dynamo.__qualname__ = op_name.lstrip("_")
    dynamo.__doc__ = (f"y = Resize(x, mode={mode}, antialias) at torch's output size; "
                      "filter support scales with the downscale factor.")
    builtin(what, opset=18, legacy=legacy,
            targets=(f"{what}.default", f"{what}.vec"))(dynamo)


_make_aa("cubic", "_upsample_bicubic2d_aa")
_make_aa("linear", "_upsample_bilinear2d_aa")

