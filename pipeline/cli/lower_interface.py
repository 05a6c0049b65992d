"""The ``pipeline.lower`` options for the delivered model: image inputs/outputs, classifier,
metadata, fp16 I/O, and weight compression (see ``pipeline.lowering.model_interface`` and
``pipeline.lowering.compression``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pipeline.errors import InputSpecError
from pipeline.lowering.compression import PALETTE_BITS, CompressionOptions
from pipeline.lowering.model_interface import (
    COLOR_LAYOUTS,
    ImageInput,
    ImageOutput,
    InterfaceOptions,
    Metadata,
    read_labels,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the interface and compression argument groups to the lower parser."""
    img = p.add_argument_group("model interface")
    img.add_argument("--image-input", action="append", default=[], metavar="NAME",
                     help="make this (1, C, H, W) float input a Core ML image input; the program "
                     "computes NAME = pixel * scale + bias per channel")
    img.add_argument("--scale", default="1", metavar="S[,S,S]",
                     help="image input scale, one value or one per channel (e.g. 0.00392157)")
    img.add_argument("--bias", default="0", metavar="B[,B,B]", help="image input bias, one value or one per channel")
    img.add_argument("--color-layout", choices=COLOR_LAYOUTS, default="RGB",
                     help="channel order of the image inputs (default RGB)")
    img.add_argument("--image-output", action="append", default=[], metavar="NAME",
                     help="return this (1, 1|3, H, W) output as an image (grey or RGB)")
    img.add_argument("--image-output-scale", type=float, default=1.0, metavar="S",
                     help="pixel = output * S for image outputs (e.g. 255 for a [0, 1] mask)")
    img.add_argument("--class-labels", metavar="FILE",
                     help="make a classifier: labels one a line; outputs classLabel and classLabel_probs")
    img.add_argument("--class-output", default="", metavar="NAME",
                     help="the output holding the class probabilities (default: the first output)")
    img.add_argument("--io-dtype", choices=("fp32", "fp16"), default="fp32",
                     help="float inputs/outputs as float16 (needs iOS16; the target is raised)")
    meta = p.add_argument_group("metadata")
    meta.add_argument("--author", default="")
    meta.add_argument("--license", default="")
    meta.add_argument("--version", dest="model_version", default="", metavar="VERSION", help="model version string")
    meta.add_argument("--description", default="", help="short description of the model")
    meta.add_argument("--input-description", action="append", default=[], metavar="NAME=TEXT")
    meta.add_argument("--output-description", action="append", default=[], metavar="NAME=TEXT")
    comp = p.add_argument_group("weight compression (coremltools.optimize.coreml)")
    comp.add_argument("--quantize", choices=("int8", "int4"),
                      help="linear symmetric weight quantization: int8 per channel (int4: --blockwise)")
    comp.add_argument("--palettize", type=int, choices=PALETTE_BITS, metavar="BITS",
                      help="k-means lookup-table weights of BITS bits (4, 6, 8; 1-3 too)")
    comp.add_argument("--prune", type=float, metavar="SPARSITY", help="magnitude-prune weights to this sparsity (0..1)")
    comp.add_argument("--blockwise", action="store_true",
                      help="iOS18 forms: per-block quantization, per-channel-group lookup tables")
    comp.add_argument("--block-size", type=int, default=32, metavar="N", help="block / channel-group size (default 32)")
    comp.add_argument("--compress-min-elements", type=int, default=2048, metavar="N",
                      help="leave weights with fewer elements uncompressed (default 2048)")


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputSpecError(f"{flag} {text!r}: expected a number or comma-separated numbers") from None


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    found = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InputSpecError(f"{flag} {item!r}: expected NAME=TEXT")
        found[name] = text
    return found


def interface_options(args: argparse.Namespace) -> InterfaceOptions:
    """The :class:`InterfaceOptions` the arguments describe."""
    scale, bias = _floats(args.scale, "--scale"), _floats(args.bias, "--bias")
    return InterfaceOptions(
        images={n: ImageInput(n, args.color_layout, scale, bias) for n in args.image_input},
        image_outputs={n: ImageOutput(n, "auto", args.image_output_scale) for n in args.image_output},
        class_labels=read_labels(args.class_labels) if args.class_labels else [],
        probabilities=args.class_output,
        io_dtype=args.io_dtype,
        metadata=Metadata(
            author=args.author, license=args.license, version=args.model_version,
            description=args.description,
            inputs=_pairs(args.input_description, "--input-description"),
            outputs=_pairs(args.output_description, "--output-description"),
        ),
    )


def compression_options(args: argparse.Namespace) -> CompressionOptions | None:
    """The :class:`CompressionOptions` the arguments describe (None: no compression)."""
    if not (args.quantize or args.palettize or args.prune):
        return None
    return CompressionOptions(
        quantize=args.quantize, palettize=args.palettize, prune=args.prune,
        blockwise=args.blockwise, block_size=args.block_size,
        weight_threshold=args.compress_min_elements,
    )
