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
def encode_kernel(symbols, lanes, log2_states, norm, start, next_state, final_state, align_bytes):
    """Encode lanes backwards; return (payload bytes, payload bit count).

    Pass 1 encodes each lane from its last symbol to its first and keeps each step's
    output bits as one uint16 (chunk | nb << 12) at its decode-step position, after the
    lanes' initial states; pass 2 writes all those fields forward as little-endian words.
    """
    n = symbols.size
    l = 1 << log2_states
    q = n // lanes
    rem = n - q * lanes
    # every bit field of the payload, in stream order, as value | width << 12 (k <= 12):
    # the lanes' initial states first, then the decode steps' chunks
    packed = np.empty(lanes + n, dtype=np.uint16)
    total = lanes * log2_states
    # nb = t_s - (x < thr_s) brings x into [n_s, 2n_s): t_s = k + 1 - bitlen(n_s), thr_s = n_s << t_s
    t_s = np.zeros(norm.size, dtype=np.int64)
    thr_s = np.zeros(norm.size, dtype=np.int64)
    for s in range(norm.size):
        v = norm[s]
        b = 0
        while v > 0:
            b += 1
            v >>= 1
        t_s[s] = log2_states + 1 - b
        thr_s[s] = norm[s] << t_s[s]
    # per symbol: the offset into next_state minus n_s, so the lookup is one add
    rebase = start - norm
    for j in range(lanes):
        x = l + final_state
        first = j * q + min(j, rem)
        for r in range(q - (0 if j < rem else 1), -1, -1):
            s = symbols[first + r]
            nb = t_s[s] - (1 if x < thr_s[s] else 0)
            packed[lanes + r * lanes + j] = (x & ((1 << nb) - 1)) | (nb << 12)
            total += nb
            x = l + next_state[rebase[s] + (x >> nb)]
        packed[j] = (x - l) | (log2_states << 12)
    align_bits = 8 * align_bytes
    nwords = (total + align_bits - 1) // align_bits * (align_bytes // 4)
    out = np.zeros(nwords, dtype=np.uint32)
    acc = np.uint64(0)
    fill = 0
    pos = 0
    for d in range(lanes + n):
        v = packed[d]
        nb = v >> 12
        acc |= np.uint64(v & 0xFFF) << np.uint64(fill)
        fill += nb
        if fill >= 32:
            out[pos] = np.uint32(acc & np.uint64(0xFFFFFFFF))
            acc >>= np.uint64(32)
            fill -= 32
            pos += 1
    if fill > 0:
        out[pos] = np.uint32(acc & np.uint64(0xFFFFFFFF))
    return out.view(np.uint8), total


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


@numba.njit(cache=True, nogil=True)
def histogram_kernel(symbols, max_alphabet):
    """Count symbol values in one pass; returns (counts, min, max), or counts of size 0
    when a value is negative or not below max_alphabet."""
    lo = symbols[0]
    hi = symbols[0]
    for v in symbols:
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if lo < 0 or hi >= max_alphabet:
        return np.zeros(0, dtype=np.int64), np.int64(lo), np.int64(hi)
    counts = np.zeros(np.int64(hi) + 1, dtype=np.int64)
    for v in symbols:
        counts[v] += 1
    return counts, np.int64(lo), np.int64(hi)
