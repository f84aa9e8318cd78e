"""Saves a torchvision model's state_dict as a safetensors file that `deno task eval` reads, with nothing but torch
and torchvision (the `safetensors` package is not needed: the format is an 8-byte header length, a JSON header and the
raw little-endian tensors).

usage: python3 docs/torchvision_to_safetensors.py resnet50 IMAGENET1K_V1 resnet50_v1.safetensors
       (weights download on first use into ~/.cache/torch; the name "none" keeps the random initialisation)
"""
import json
import struct
import sys

import torchvision

DTYPES = {"torch.float32": "F32", "torch.int64": "I64"}


def save_safetensors(state_dict, path):
    header, chunks, offset = {}, [], 0
    for name, t in state_dict.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": DTYPES[str(t.dtype)], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)  # the tensors start 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


arch, weights, out = sys.argv[1:4]
model = getattr(torchvision.models, arch)(weights=None if weights == "none" else weights)
save_safetensors(model.state_dict(), out)
print(f"{out}: {arch} {weights}, {sum(t.numel() for t in model.state_dict().values()):,} values")
