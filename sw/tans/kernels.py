"""Compiled inner loops of the fast encoder and decoder (numba, cached on disk).

Kept apart from the Python-facing modules so that what they compute stays readable
there; these functions assume their inputs were validated by the caller.
"""
from __future__ import annotations

import numba
import numpy as np

# error codes returned by decode_kernel
OK = 0
ERR_TRUNCATED = 1


@numba.njit(cache=True, nogil=True)
def encode_kernel(symbols, lanes, log2_states, norm, start, next_state, final_state):
    """Encode lanes backwards; return (payload bytes, payload bit count)."""
    n = symbols.size
    l = 1 << log2_states
    q = n // lanes
    rem = n - q * lanes
    chunk = np.empty(n, dtype=np.uint32)
    length = np.empty(n, dtype=np.uint8)
    init = np.empty(lanes, dtype=np.int64)
    total = lanes * log2_states
    nbits_n = np.empty(norm.size, dtype=np.int64)
    for s in range(norm.size):
        v = norm[s]
        b = 0
        while v > 0:
            b += 1
            v >>= 1
        nbits_n[s] = b
    for j in range(lanes):
        nj = q + (1 if j < rem else 0)
        sj = j * q + min(j, rem)
        x = l + final_state
        for r in range(nj - 1, -1, -1):
            s = symbols[sj + r]
            ns = norm[s]
            bx = 0
            v = x
            while v > 0:
                bx += 1
                v >>= 1
            nb = bx - nbits_n[s]
            if (x >> nb) < ns:
                nb -= 1
            d = r * lanes + j
            chunk[d] = x & ((1 << nb) - 1)
            length[d] = nb
            total += nb
            x = l + next_state[start[s] + (x >> nb) - ns]
        init[j] = x - l
    nbytes = ((total + 63) // 64) * 8
    out = np.zeros(nbytes, dtype=np.uint8)
    acc = np.uint64(0)
    fill = 0
    pos = 0
    for j in range(lanes):
        acc |= np.uint64(init[j]) << np.uint64(fill)
        fill += log2_states
        while fill >= 8:
            out[pos] = np.uint8(acc & np.uint64(0xFF))
            acc >>= np.uint64(8)
            fill -= 8
            pos += 1
    for d in range(n):
        nb = length[d]
        if nb:
            acc |= np.uint64(chunk[d]) << np.uint64(fill)
            fill += nb
            while fill >= 8:
                out[pos] = np.uint8(acc & np.uint64(0xFF))
                acc >>= np.uint64(8)
                fill -= 8
                pos += 1
    if fill > 0:
        out[pos] = np.uint8(acc & np.uint64(0xFF))
    return out, total


@numba.njit(cache=True, nogil=True)
def decode_kernel(payload, payload_bits, n, lanes, log2_states, symbol, nb_bits, base, out, flat_out,
                  final_state):
    """Decode n symbols from `lanes` interleaved streams into out (flat order if flat_out).

    Returns (error code, bits consumed, number of lanes not ending in final_state).
    """
    q = n // lanes
    rem = n - q * lanes
    state = np.empty(lanes, dtype=np.int64)
    nbytes = payload.size
    acc = np.uint64(0)
    fill = 0
    pos = 0
    consumed = 0
    mask_k = (1 << log2_states) - 1
    for j in range(lanes):
        while fill < log2_states:
            if pos >= nbytes:
                return ERR_TRUNCATED, consumed, 0
            acc |= np.uint64(payload[pos]) << np.uint64(fill)
            pos += 1
            fill += 8
        state[j] = np.int64(acc & np.uint64(mask_k))
        acc >>= np.uint64(log2_states)
        fill -= log2_states
        consumed += log2_states
    rounds = q + (1 if rem else 0)
    ptr = np.empty(lanes, dtype=np.int64)
    for j in range(lanes):
        ptr[j] = j * q + min(j, rem)
    d = 0
    for r in range(rounds):
        width = lanes if r < q else rem
        for j in range(width):
            st = state[j]
            if flat_out:
                out[ptr[j]] = symbol[st]
                ptr[j] += 1
            else:
                out[d] = symbol[st]
            d += 1
            nb = nb_bits[st]
            if fill < nb:
                while fill <= 56 and pos < nbytes:
                    acc |= np.uint64(payload[pos]) << np.uint64(fill)
                    pos += 1
                    fill += 8
                if fill < nb:
                    return ERR_TRUNCATED, consumed, 0
            state[j] = base[st] + np.int64(acc & np.uint64((1 << nb) - 1))
            acc >>= np.uint64(nb)
            fill -= nb
            consumed += nb
    if consumed > payload_bits:
        return ERR_TRUNCATED, consumed, 0
    bad = 0
    for j in range(lanes):
        if state[j] != final_state:
            bad += 1
    return OK, consumed, bad
