"""Core ML custom layers (neural-network backend): MIL custom ops, and Swift/Metal generation.

Modules: ``spec`` (layer spec, MIL op class factory), ``lowering`` (the handler the driver uses
for ops named in ``custom_layers``), ``swift`` (``<Class>.swift``, ``<Class>.metal`` and a README
written next to the model), ``templates`` (the per-op Swift/Metal bodies).
"""

from pipeline.lowering.custom_layers.lowering import ALL_UNSUPPORTED, lower_as_custom_layer
from pipeline.lowering.custom_layers.spec import LayerSpec, is_custom_layer_op

__all__ = ["ALL_UNSUPPORTED", "LayerSpec", "is_custom_layer_op", "lower_as_custom_layer"]
