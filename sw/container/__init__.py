"""The `.tans` container (named tensors, their quantizers and tANS payloads; docs/FORMAT.md). Imports sw.tans only."""
from sw.container.records import (Container, Tensor, decode_record, encode_record, entropy_bits, f32_tensor,
                                  from_bytes, int8_tensor, read, tans_tensor, to_bytes, write)

__all__ = ["Container", "Tensor", "decode_record", "encode_record", "entropy_bits", "f32_tensor", "from_bytes",
           "int8_tensor", "read", "tans_tensor", "to_bytes", "write"]
