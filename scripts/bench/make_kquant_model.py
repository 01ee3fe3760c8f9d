#!/usr/bin/env python3
"""A Q4_K_M-shaped GGUF for speed measurements: SRC's metadata and 1-D tensors, and every 2-D weight
but the token embeddings as random, valid q4_k or q6_k blocks, q6_k where llama.cpp's Q4_K_M puts it
(output, attn_v, and ffn_down in the first and last eighth of the layers and every third between).
The values are not a quantization of SRC (the decode and prefill speed do not depend on them).

    python3 scripts/bench/make_kquant_model.py SRC.gguf OUT.gguf     (needs numpy and gguf from PyPI)
"""
import sys

import gguf
import numpy as np

Q = gguf.GGMLQuantizationType
VT = gguf.GGUFValueType


def copy_metadata(reader, writer):
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        kind = field.types[0]
        writer.add_key_value(name, field.contents(), kind, sub_type=field.types[-1] if kind == VT.ARRAY else None)
    writer.add_uint32("general.file_type", 15)  # LLAMA_FTYPE_MOSTLY_Q4_K_M


def random_blocks(rng, kind, rows, cols):
    f16 = lambda v: np.frombuffer(np.float16(v).tobytes(), np.uint8)
    n = rows * cols // 256
    if kind == Q.Q4_K:  # d, dmin (f16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
        b = rng.integers(0, 256, size=(n, 144), dtype=np.uint8)
        b[:, 0:2], b[:, 2:4] = f16(1e-3), f16(5e-4)
    else:  # ql[128], qh[64], 16 int8 scales, d (f16)
        b = rng.integers(0, 256, size=(n, 210), dtype=np.uint8)
        b[:, 192:208] = rng.integers(-32, 32, size=(n, 16), dtype=np.int8).view(np.uint8)
        b[:, 208:210] = f16(5e-4)
    return b.reshape(rows, -1)


def q6k_here(name, n_layers):
    if name == "output.weight" or name.endswith("attn_v.weight"):
        return True
    if name.endswith("ffn_down.weight"):
        i = int(name.split(".")[1])
        return i < n_layers // 8 or i >= 7 * n_layers // 8 or (i - n_layers // 8) % 3 == 2
    return False


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reader = gguf.GGUFReader(sys.argv[1])
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    n_layers = int(reader.fields[f"{arch}.block_count"].parts[-1][0])
    writer = gguf.GGUFWriter(sys.argv[2], arch)
    copy_metadata(reader, writer)
    rng = np.random.default_rng(0)
    for t in reader.tensors:
        rows, cols = (int(t.shape[1]), int(t.shape[0])) if len(t.shape) == 2 else (0, 0)
        if rows and t.name != "token_embd.weight" and cols % 256 == 0:
            kind = Q.Q6_K if q6k_here(t.name, n_layers) else Q.Q4_K
            writer.add_tensor(t.name, random_blocks(rng, kind, rows, cols), raw_dtype=kind)
        else:
            writer.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
