"""The `.tans` container (named tensors, their quantizers and tANS payloads; docs/FORMAT.md) and the
safe file access every reader and writer in sw uses (files.py). Imports sw.tans only."""
from sw.container.files import atomic_write, open_regular, read_npy, read_regular, write_npz
from sw.container.records import (Container, Tensor, codebook_tensor, decode_record, encode_record, entropy_bits, f32_tensor,
                                  from_bytes, in_file, int8_tensor, read, record_bits, tans_tensor, to_bytes,
                                  write)

__all__ = ["Container", "Tensor", "atomic_write", "codebook_tensor", "decode_record", "encode_record", "entropy_bits", "f32_tensor",
           "from_bytes", "in_file", "int8_tensor", "open_regular", "read", "read_npy", "read_regular", "record_bits",
           "tans_tensor", "to_bytes", "write", "write_npz"]
