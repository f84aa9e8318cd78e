"""Loads a `deno task export` file (or a training checkpoint's model) into the matching torchvision ResNet, strictly.

usage: python3 docs/safetensors_to_torchvision.py MODEL.safetensors [--save MODEL.pt]

Needs only torch and torchvision (Debian: apt-get install python3-torchvision), not the `safetensors` package, which
Debian's torch lacks: the file is read by its documented format, an 8-byte little-endian header length, a JSON header
(name -> dtype, shape, data_offsets; "__metadata__" -> strings) and the tensors' raw little-endian bytes.

The architecture comes from the export's metadata "arch_spec" (JSON: block "basic" or "bottleneck", layers, stem
"imagenet" or "cifar", width, numClasses), which `deno task export` copies from a training checkpoint; a file without
it (a bare weights file) is described from its tensors' names and shapes, as `deno task eval` does. The CIFAR stem is
torchvision's ResNet with conv1 a 3x3 stride-1 convolution and maxpool an Identity. torchvision's ResNet fixes its
width at 64 (stem channels, stage planes 64, 128, 256, 512); another --width is built with torchvision's own blocks
and ResNet._make_layer at planes width x (1, 2, 4, 8), so every module and state-dict name is torchvision's.

A training checkpoint also holds the optimizer's momentum ("optim." names) and, with --model-ema, the weight average
("ema." names): the model's own tensors are taken and those left out (the average is what `deno task export --ema`
exports). Prints one line (architecture and parameter count) and the class names; --save writes the state_dict with
torch.save. As a library:

    import sys; sys.path.insert(0, "docs")
    from safetensors_to_torchvision import load_torchvision
    model, class_names = load_torchvision("model.safetensors")  # in eval mode
    logits = model(images)  # float32 [N, 3, H, W], normalised as in training: the file's "normalization" metadata
"""
import argparse
import json
import re
import struct
import sys

import torch
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}

ARCHITECTURES = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
    ("bottleneck", (3, 8, 36, 3)): "resnet152",
}


def read_safetensors(path):
    """The tensors of a safetensors file by name, and its "__metadata__" (strings)."""
    if sys.byteorder != "little":
        raise SystemExit(f"error: {path}: this reader assumes a little-endian machine, as the format's data is")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SystemExit(f"error: {path}: {e.strerror}")
    if len(data) < 8:
        raise SystemExit(f"error: {path}: not a safetensors file (file is {len(data)} bytes, expected 8 or more)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise SystemExit(f"error: {path}: header length {n} exceeds the file's {len(data)} bytes")
    header = json.loads(data[8 : 8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in DTYPES:
            raise SystemExit(f"error: {path}: tensor {name!r} has dtype {info['dtype']}, expected one of {list(DTYPES)}")
        a, b = info["data_offsets"]
        dtype, shape = DTYPES[info["dtype"]], info["shape"]
        raw = bytearray(data[8 + n + a : 8 + n + b])  # a copy torch may own
        tensor = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = tensor.reshape(shape)
    return tensors, metadata


def spec_of(tensors, metadata, path):
    """The ResNet spec: the export's "arch_spec", else inferred from torchvision's tensor names and shapes."""
    if "arch_spec" in metadata:
        spec = json.loads(metadata["arch_spec"])
        return {k: spec[k] for k in ("block", "layers", "stem", "width", "numClasses")}
    conv1 = tensors.get("conv1.weight")
    fc = tensors.get("fc.weight")
    if conv1 is None or fc is None or conv1.ndim != 4 or conv1.shape[2] not in (3, 7):
        raise SystemExit(f"error: {path}: no arch_spec metadata, and no torchvision ResNet conv1.weight and fc.weight")
    blocks = [set(), set(), set(), set()]
    for name in tensors:
        m = re.match(r"^layer([1-4])\.(\d+)\.", name)
        if m:
            blocks[int(m.group(1)) - 1].add(int(m.group(2)))
    return {
        "block": "bottleneck" if "layer1.0.conv3.weight" in tensors else "basic",
        "layers": [len(b) for b in blocks],
        "stem": "imagenet" if conv1.shape[2] == 7 else "cifar",
        "width": conv1.shape[0],
        "numClasses": fc.shape[0],
    }


def build_resnet(spec):
    """torchvision's ResNet for `spec`: the named model at width 64, else its blocks at planes width x (1, 2, 4, 8)."""
    block = Bottleneck if spec["block"] == "bottleneck" else BasicBlock
    layers, width = list(spec["layers"]), spec["width"]
    model = ResNet(block, layers, num_classes=spec["numClasses"])  # torchvision.models.resnet18 etc. are this
    if width != 64:
        # ResNet.__init__ hard-codes 64 planes; rebuild the stem, stages and fc the way it does, at `width`.
        model.inplanes = width
        model.conv1 = torch.nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        model.bn1 = torch.nn.BatchNorm2d(width)
        model.layer1 = model._make_layer(block, width, layers[0])
        model.layer2 = model._make_layer(block, width * 2, layers[1], stride=2)
        model.layer3 = model._make_layer(block, width * 4, layers[2], stride=2)
        model.layer4 = model._make_layer(block, width * 8, layers[3], stride=2)
        model.fc = torch.nn.Linear(width * 8 * block.expansion, spec["numClasses"])
    if spec["stem"] == "cifar":  # 3x3 stride-1 conv, no max pool
        model.conv1 = torch.nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    return model


def load_torchvision(path):
    """The torchvision ResNet of the export at `path`, loaded with strict=True, in eval mode; and its class names."""
    tensors, metadata = read_safetensors(path)
    # A training checkpoint: its momentum ("optim.") and weight average ("ema.") are not the model's tensors.
    tensors = {k: v for k, v in tensors.items() if not k.startswith(("optim.", "ema."))}
    model = build_resnet(spec_of(tensors, metadata, path))
    model.load_state_dict(tensors, strict=True)
    model.eval()
    class_names = json.loads(metadata["class_names"]) if "class_names" in metadata else None
    return model, class_names


def describe(spec):
    name = ARCHITECTURES.get((spec["block"], tuple(spec["layers"])), f"{spec['block']} {spec['layers']}")
    return f"{name} ({spec['stem']} stem, width {spec['width']}, {spec['numClasses']} classes)"


def main():
    parser = argparse.ArgumentParser(description="Loads a deno task export file into torchvision's ResNet.")
    parser.add_argument("weights", help="the .safetensors file deno task export wrote")
    parser.add_argument("--save", metavar="FILE.pt", help="also write the model's state_dict with torch.save")
    args = parser.parse_args()
    tensors, metadata = read_safetensors(args.weights)
    spec = spec_of(tensors, metadata, args.weights)
    model, class_names = load_torchvision(args.weights)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.weights}: torchvision {describe(spec)}, {parameters:,} parameters, loaded with strict=True")
    if class_names is not None:
        print(f"classes: {', '.join(class_names[:10])}{', ...' if len(class_names) > 10 else ''}")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"wrote {args.save} (torch.save of the state_dict; torchvision {torchvision.__version__})")


if __name__ == "__main__":
    main()
