#!/usr/bin/env python3
"""Writes the fuzzer's seed corpus (small valid and invalid safetensors images) to a directory."""
import json, struct, sys, os

def image(header, data=b""):
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
seeds = {
    "valid_two": image({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                        "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
                        "__metadata__": {"k": "v"}}, bytes(22)),
    "valid_scalar_empty": image({"s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
                                 "e": {"dtype": "F16", "shape": [0, 4], "data_offsets": [8, 8]}}, bytes(8)),
    "overlap": image({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                      "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)),
    "bad_size": image({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
    "bad_dtype": image({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)),
    "truncated": image({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, bytes(7)),
}
for name, blob in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(blob)
