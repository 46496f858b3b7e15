#!/usr/bin/env python3
"""Writes the safetensors fuzzer's seed corpus: a few tiny valid and invalid images.

Usage: make_corpus.py [OUT_DIR]  (default: tests/data/fuzz_corpus/safetensors, the checked-in seeds)
"""
import json
import os
import struct
import sys


def image(header, data=b"", pad=True):
    h = json.dumps(header).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


SEEDS = {
    "valid_two": image({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                        "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
                        "__metadata__": {"k": "v"}}, bytes(range(22))),
    "valid_scalar_empty": image({"s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
                                 "e": {"dtype": "F16", "shape": [0, 4], "data_offsets": [8, 8]},
                                 "q": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [8, 10]}}, bytes(10)),
    "overlap": image({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                      "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)),
    "bad_size": image({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
    "bad_dtype": image({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)),
    "truncated": image({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, bytes(7), pad=False),
}


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data", "fuzz_corpus", "safetensors")
    os.makedirs(out, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
