"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: u64 little-endian header length N, N bytes of UTF-8 JSON
    {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
then the data section; offsets are relative to the start of the data section. The header is padded
with spaces to a multiple of 8 bytes.

The writer is deterministic: tensors are laid out in sorted name order, the JSON has a fixed key
order and no whitespace, so the same inputs always give the same bytes.

BF16 is handled with bit manipulation (numpy has no bfloat16): reading shifts the 16 stored bits
into the high half of a float32; writing rounds float32 to nearest-even bf16.
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype name -> (numpy dtype used for the raw bytes, bytes per element)
_NP = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

_FROM_TORCH = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}

_MAX_HEADER = 100 << 20


def bf16_bits_to_f32(bits):
    """uint16 array of bf16 bit patterns -> float32 array (exact)."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bit patterns, round to nearest even (NaN stays NaN)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    out = rounded.astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        out[nan] = ((u[nan] >> np.uint64(16)) | np.uint64(0x40)).astype(np.uint16)
    return out


def round_bf16(t):
    """Round a float tensor to bf16 precision and return it as float32 (same device)."""
    a = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return torch.from_numpy(bf16_bits_to_f32(f32_to_bf16_bits(a)).copy()).to(t.device)


def read_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("%s: truncated (no header length)" % path)
        (n,) = struct.unpack("<Q", raw)
        if n == 0 or n > _MAX_HEADER:
            raise ValueError("%s: implausible header length %d" % (path, n))
        hdr = f.read(n)
        if len(hdr) != n:
            raise ValueError("%s: truncated header" % path)
    return json.loads(hdr.decode("utf-8")), 8 + n


def load(path, as_float32=False):
    """Read a .safetensors file -> (dict name -> torch tensor (CPU), metadata dict).

    BF16 tensors are returned as float32 (exact upcast) since numpy cannot hold bf16; with
    as_float32=True every floating tensor is returned as float32.
    """
    header, data_start = read_header(path)
    meta = header.pop("__metadata__", None) or {}
    with open(path, "rb") as f:
        f.seek(data_start)
        data = f.read()
    out = {}
    for name in sorted(header):
        e = header[name]
        dt = e["dtype"]
        if dt not in _NP:
            raise ValueError("%s: tensor %s: unsupported dtype %s" % (path, name, dt))
        shape = [int(s) for s in e["shape"]]
        b, en = (int(o) for o in e["data_offsets"])
        npdt = _NP[dt]
        count = int(np.prod(shape)) if shape else 1
        if en - b != count * npdt.itemsize or en > len(data):
            raise ValueError("%s: tensor %s: bad data_offsets %s for shape %s %s" % (path, name, [b, en], shape, dt))
        a = np.frombuffer(data, dtype=npdt, count=count, offset=b).reshape(shape)
        if dt == "BF16":
            a = bf16_bits_to_f32(a)
        a = np.array(a, copy=True)  # writable, native byte order
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("="))
        t = torch.from_numpy(a)
        if as_float32 and t.is_floating_point():
            t = t.float()
        out[name] = t
    return out, dict(meta)


def _to_bytes(t, dtype):
    """tensor -> (safetensors dtype name, raw little-endian bytes)."""
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(t))
    t = t.detach().to("cpu").contiguous()
    if dtype is None:
        dtype = _FROM_TORCH.get(t.dtype)
        if dtype is None:
            raise ValueError("unsupported torch dtype %s" % t.dtype)
    if dtype == "BF16":
        a = f32_to_bf16_bits(t.float().numpy())
    else:
        if t.dtype == torch.bfloat16:
            t = t.float()
        a = np.ascontiguousarray(t.numpy().astype(_NP[dtype], copy=False))
    return dtype, a.tobytes(order="C")


def save(path, tensors, metadata=None, dtypes=None):
    """Write tensors (dict name -> torch tensor or numpy array) to `path`.

    dtypes: optional dict name -> safetensors dtype ("F32", "BF16", ...) to convert on write;
    otherwise the tensor's own dtype is kept. metadata: dict str -> str.
    """
    dtypes = dtypes or {}
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError("metadata must map str -> str (got %r: %r)" % (k, v))
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    chunks = []
    off = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a valid tensor name")
        t = tensors[name]
        dt, raw = _to_bytes(t, dtypes.get(name))
        shape = list(t.shape)
        header[name] = {"dtype": dt, "shape": [int(s) for s in shape], "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for c in chunks:
            f.write(c)
