"""Per-op bodies of the generated Swift custom layers and Metal kernels.

Ops with real bodies: TopK (CPU evaluate), HardTanh of ``pipeline.custom`` and Clip (CPU and
Metal clamp), Max (CPU and Metal element-wise maximum).  Every other op gets a clearly marked
``TODO(issue 5)`` body that throws, so a forgotten layer fails loudly instead of computing zeros.

Each :class:`OpBody` holds Swift statements (indented for a method body) that may use the
parsed parameters as properties (``self.k`` ...), ``inputs``, ``outputs`` and ``inputShapes``.
"""

from __future__ import annotations

import dataclasses
import logging

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OpBody:
    """Swift/Metal text for one op; ``metal_kernel`` is None when only a stub exists."""

    output_shapes: str
    evaluate: str
    metal_kernel: str | None = None
    metal_bytes: str = ""
    optional_params: dict[str, str] = dataclasses.field(default_factory=dict)


_FLOAT_GUARD = """\
        for array in inputs + outputs where array.dataType != .float32 {
            throw LayerError.unsupported("expects float32 arrays, got \\(array.dataType.rawValue)")
        }
"""

TOPK = OpBody(
    output_shapes="""\
        var shape = inputShapes[0]
        let dim = axis < 0 ? axis + shape.count : axis
        shape[dim] = NSNumber(value: k)
        return [shape, shape]
""",
    evaluate=_FLOAT_GUARD + """\
        let x = inputs[0]
        let shape = x.shape.map { $0.intValue }
        let dim = axis < 0 ? axis + shape.count : axis
        let n = shape[dim]
        let outer = shape[..<dim].reduce(1, *)
        let inner = shape[(dim + 1)...].reduce(1, *)
        let src = x.dataPointer.bindMemory(to: Float.self, capacity: x.count)
        let values = outputs[0].dataPointer.bindMemory(to: Float.self, capacity: outputs[0].count)
        let indices = outputs[1].dataPointer.bindMemory(to: Float.self, capacity: outputs[1].count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                // ONNX TopK: ties keep the lower index first; sorted=0 allows any order, so a
                // sorted result is always valid.
                let order = (0..<n).sorted { a, b in
                    let va = src[base + a * inner]
                    let vb = src[base + b * inner]
                    if va == vb { return a < b }
                    return largest != 0 ? va > vb : va < vb
                }
                for j in 0..<k {
                    let out = o * k * inner + j * inner + i
                    values[out] = src[base + order[j] * inner]
                    indices[out] = Float(order[j])
                }
            }
        }
""",
)

_CLAMP_EVAL = _FLOAT_GUARD + """\
        let x = inputs[0]
        let src = x.dataPointer.bindMemory(to: Float.self, capacity: x.count)
        let dst = outputs[0].dataPointer.bindMemory(to: Float.self, capacity: outputs[0].count)
        let low = Float(LOW)
        let high = Float(HIGH)
        for i in 0..<x.count {
            // min(max(x, low), high): NaN stays NaN, low > high gives high (ONNX Clip).
            let v = src[i]
            dst[i] = v.isNaN ? v : Swift.min(Swift.max(v, low), high)
        }
"""

_CLAMP_METAL = """\
kernel void KERNEL(texture2d_array<half, access::read> input [[texture(0)]],
                   texture2d_array<half, access::write> output [[texture(1)]],
                   constant float2 &bounds [[buffer(0)]],
                   ushort3 gid [[thread_position_in_grid]]) {
    if (gid.x >= output.get_width() || gid.y >= output.get_height()) {
        return;
    }
    const half4 x = input.read(gid.xy, gid.z);
    output.write(min(max(x, half4(bounds.x)), half4(bounds.y)), gid.xy, gid.z);
}
"""

_CLAMP_BYTES = """\
        var bounds = SIMD2<Float>(Float(LOW), Float(HIGH))
        encoder.setBytes(&bounds, length: MemoryLayout<SIMD2<Float>>.stride, index: 0)
"""


def _clamp(low: str, high: str, optional: dict[str, str] | None = None) -> OpBody:
    return OpBody(
        output_shapes="        return [inputShapes[0]]\n",
        evaluate=_CLAMP_EVAL.replace("LOW", low).replace("HIGH", high),
        metal_kernel=_CLAMP_METAL,
        metal_bytes=_CLAMP_BYTES.replace("LOW", low).replace("HIGH", high),
        optional_params=optional or {},
    )


MAX = OpBody(
    output_shapes="""\
        // Element-wise maximum of inputs of one shape (broadcasting: see evaluate).
        return [inputShapes[0]]
""",
    evaluate=_FLOAT_GUARD + """\
        let dst = outputs[0].dataPointer.bindMemory(to: Float.self, capacity: outputs[0].count)
        for array in inputs where array.count != outputs[0].count {
            throw LayerError.unsupported("broadcasting max of \\(array.shape) is not implemented")
        }
        let first = inputs[0].dataPointer.bindMemory(to: Float.self, capacity: inputs[0].count)
        for i in 0..<outputs[0].count {
            dst[i] = first[i]
        }
        for array in inputs.dropFirst() {
            let src = array.dataPointer.bindMemory(to: Float.self, capacity: array.count)
            for i in 0..<outputs[0].count {
                // NaN in either input gives NaN, as ONNX Max.
                dst[i] = (src[i].isNaN || dst[i].isNaN) ? Float.nan : Swift.max(dst[i], src[i])
            }
        }
""",
    metal_kernel="""\
kernel void KERNEL(texture2d_array<half, access::read> a [[texture(0)]],
                   texture2d_array<half, access::read> b [[texture(1)]],
                   texture2d_array<half, access::write> output [[texture(2)]],
                   ushort3 gid [[thread_position_in_grid]]) {
    if (gid.x >= output.get_width() || gid.y >= output.get_height()) {
        return;
    }
    output.write(max(a.read(gid.xy, gid.z), b.read(gid.xy, gid.z)), gid.xy, gid.z);
}
""",
)

#: (domain, op type) -> body; the key of an op without an entry gets :data:`TODO`.
BODIES: dict[tuple[str, str], OpBody] = {
    ("", "TopK"): TOPK,
    ("pipeline.custom", "HardTanh"): _clamp("minVal", "maxVal"),
    ("", "Clip"): _clamp("min", "max", {"min": "-Double.infinity", "max": "Double.infinity"}),
    ("", "Max"): MAX,
}

TODO = OpBody(
    output_shapes="""\
        // TODO(issue 5): return this op's output shapes; the first input's shape is a guess.
        return [inputShapes[0]]
""",
    evaluate="""\
        // TODO(issue 5): write this op's CPU implementation (its ONNX semantics are in the
        // operator docs at https://onnx.ai/onnx/operators/); until then the layer fails loudly.
        throw LayerError.notImplemented("evaluate(inputs:outputs:) of this custom layer")
""",
)

METAL_STUB = """\
kernel void KERNEL(texture2d_array<half, access::read> input [[texture(0)]],
                   texture2d_array<half, access::write> output [[texture(1)]],
                   ushort3 gid [[thread_position_in_grid]]) {
    // TODO(issue 5): the GPU version of this layer.  Until it is written the Swift class has no
    // encode(commandBuffer:inputs:outputs:), so Core ML runs the CPU evaluate instead.
    if (gid.x >= output.get_width() || gid.y >= output.get_height()) {
        return;
    }
    output.write(input.read(gid.xy, gid.z), gid.xy, gid.z);
}
"""


def body_for(domain: str, op_type: str) -> OpBody:
    """The bodies for ``domain::op_type`` (the TODO body when we have none)."""
    return BODIES.get((domain, op_type), TODO)
