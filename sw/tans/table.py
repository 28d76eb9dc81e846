"""tANS tables: count normalization, symbol spread, decode and encode tables.

The decode table is what the hardware holds: for each of the l states, the
symbol it emits, how many bits to read next and the base the bits are added to.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from sw.tans import format as fmt
from sw.tans.errors import TableError


def normalize_counts(counts: np.ndarray, log2_states: int) -> np.ndarray:
    """Scale symbol counts to integers summing to l, minimizing expected code length.

    Every present symbol gets at least one slot. The cost sum_s c_s * log2(l / q(n_s)),
    with q(n) = n except q(1) = 1 / (2 ln 2) for a lone slot at the top of the table
    (see spread_symbols), is separable and convex in n_s, so handing out the remaining
    slots one by one to the symbol whose cost drops most is exactly optimal.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1:
        raise TableError("symbol counts must be a 1-D array")
    if np.any(counts < 0):
        raise TableError("symbol counts must be non-negative")
    check_log2_states(log2_states)
    l = fmt.states_of(log2_states)
    present = np.flatnonzero(counts)
    if present.size == 0:
        raise TableError("cannot build a table for an empty input (no symbols)")
    if present.size > l:
        raise TableError(
            f"{present.size} distinct symbols do not fit a table of {l} states; "
            f"use more states (at least {1 << (present.size - 1).bit_length()})")
    norm = np.zeros(counts.size, dtype=np.int64)
    c = counts[present].astype(np.float64)
    # Start near the proportional allocation, never below one slot ...
    n = np.maximum(1, np.floor(c * (l - present.size) / c.sum())).astype(np.int64)
    # ... which never overshoots l, then finish greedily on the exact marginal gains.
    spare = l - int(n.sum())
    heap = [(-ci * _step_gain(ni), i) for i, (ci, ni) in enumerate(zip(c, n))]
    heapq.heapify(heap)
    while spare > 0:
        _, i = heapq.heappop(heap)
        n[i] += 1
        spare -= 1
        heapq.heappush(heap, (-c[i] * _step_gain(n[i]), i))
    # Swap passes: move a slot from the symbol that loses least to the one that gains most,
    # while that lowers the cost (the start point may have given a symbol too many slots).
    while True:
        gain = c * _step_gains(n)
        loss = np.where(n > 1, c * _step_gains(np.maximum(n - 1, 1)), np.inf)
        g, s = int(np.argmax(gain)), int(np.argmin(loss))
        if g == s or gain[g] <= loss[s] + 1e-12:
            break
        n[g] += 1
        n[s] -= 1
    norm[present] = n
    return norm


SINGLE_SLOT_WEIGHT = 1 / (2 * math.log(2))  #: effective slots of a lone top state, ~1/(x ln 2) at x ~ 2l


def _step_gains(n: np.ndarray) -> np.ndarray:
    """Bits saved per occurrence when a symbol goes from n to n + 1 slots."""
    n = np.asarray(n, dtype=np.float64)
    return np.log2((n + 1) / np.where(n == 1, SINGLE_SLOT_WEIGHT, n))


def model_cost(counts: np.ndarray, norm: np.ndarray, log2_states: int) -> float:
    """Bits the normalization's model expects for these counts under `norm` (see normalize_counts)."""
    c = np.asarray(counts, dtype=np.float64)
    n = np.asarray(norm, dtype=np.float64)
    m = c > 0
    q = np.where(n[m] == 1, SINGLE_SLOT_WEIGHT, n[m])
    return float((c[m] * np.log2(fmt.states_of(log2_states) / q)).sum())


def _step_gain(n: int) -> float:
    return float(_step_gains(np.array([n]))[0])


def check_log2_states(log2_states: int) -> None:
    """Raise TableError unless l = 2**log2_states is a supported table size."""
    if not isinstance(log2_states, (int, np.integer)) or not (
            fmt.MIN_LOG2_STATES <= log2_states <= fmt.MAX_LOG2_STATES):
        raise TableError(
            f"table size must be 2**k states with k in {fmt.MIN_LOG2_STATES}..{fmt.MAX_LOG2_STATES}"
            f" (32..4096 states), got k={log2_states!r}")


def check_normalized(norm: np.ndarray, log2_states: int) -> None:
    """Raise TableError unless `norm` is a valid table description for l states."""
    check_log2_states(log2_states)
    norm = np.asarray(norm)
    l = fmt.states_of(log2_states)
    if norm.ndim != 1 or norm.size == 0:
        raise TableError("normalized counts must be a non-empty 1-D array")
    if np.any(norm < 0):
        raise TableError("normalized counts must be non-negative")
    total = int(norm.sum())
    if total != l:
        raise TableError(f"normalized counts sum to {total}, not to the {l} table states")


def spread_symbols(norm: np.ndarray, log2_states: int) -> np.ndarray:
    """Assign a symbol to each state: symbol s takes n_s states spaced ~l/n_s apart.

    Symbols with a single state take the highest states, in increasing symbol order:
    tANS visits state x with probability ~1/x, so the top states cost the other
    symbols least (zstd's FSE does the same with its "low probability" symbols).
    The other states go, in order, to occurrence i of symbol s sorted by the integer
    key ((2i+1) << 32) // n_s, ties to the smaller symbol: the "precise" spread,
    positions near (i + 1/2) / p_s.
    """
    check_normalized(norm, log2_states)
    norm = np.asarray(norm, dtype=np.int64)
    single = np.flatnonzero(norm == 1)
    many = np.where(norm > 1, norm, 0)
    syms = np.repeat(np.arange(norm.size, dtype=np.int64), many)
    occ = np.arange(syms.size, dtype=np.int64) - np.repeat(np.cumsum(many) - many, many)
    keys = ((2 * occ + 1) << fmt.SPREAD_KEY_SHIFT) // norm[syms]
    order = np.lexsort((syms, keys))
    return np.concatenate([syms[order], single])


@dataclass(frozen=True)
class DecodeTable:
    """The l-entry decode table: state -> (symbol, nb_bits, base)."""

    log2_states: int
    symbol: np.ndarray   #: uint16[l], symbol emitted in each state
    nb_bits: np.ndarray  #: uint8[l], bits to read after emitting it
    base: np.ndarray     #: uint16[l], next state = base + bits read

    @property
    def states(self) -> int:
        return fmt.states_of(self.log2_states)

    def entries(self) -> list[tuple[int, int, int]]:
        """The table as (symbol, nb_bits, base) tuples, state 0 first (for hardware loads)."""
        return list(zip(self.symbol.tolist(), self.nb_bits.tolist(), self.base.tolist()))


@dataclass(frozen=True)
class EncodeTable:
    """Encoder side: for symbol s and x in [n_s, 2n_s), the state index to move to."""

    log2_states: int
    norm: np.ndarray     #: int64[A] normalized counts
    start: np.ndarray    #: int64[A] offset of symbol s's run in `next_state`
    next_state: np.ndarray  #: int64[l], state index for (s, x): next_state[start[s] + x - n_s]


def build_tables(norm: np.ndarray, log2_states: int) -> tuple[DecodeTable, EncodeTable]:
    """Build the decode and encode tables from normalized counts (validated)."""
    spread = spread_symbols(norm, log2_states)
    norm = np.asarray(norm, dtype=np.int64)
    l = fmt.states_of(log2_states)
    # x runs through n_s .. 2n_s-1 over symbol s's states, in state order.
    first = np.cumsum(norm) - norm
    by_symbol = np.argsort(spread, kind="stable")           # states grouped by symbol, in order
    rank = np.empty(l, dtype=np.int64)
    rank[by_symbol] = np.arange(l) - first[spread[by_symbol]]
    x = norm[spread] + rank
    nb = log2_states - (np.floor(np.log2(x)).astype(np.int64))
    # guard the float log2 against rounding: x in [2^(k-nb), 2^(k-nb+1))
    nb = np.where((x << nb) >= 2 * l, nb - 1, nb)
    nb = np.where((x << nb) < l, nb + 1, nb)
    base = (x << nb) - l
    dec = DecodeTable(log2_states, spread.astype(np.uint16), nb.astype(np.uint8), base.astype(np.uint16))
    enc = EncodeTable(log2_states, norm, first, by_symbol.astype(np.int64))
    return dec, enc


def longest_zero_run(table: DecodeTable) -> int | None:
    """Longest run of consecutive steps of one lane that read no bits; None when there is no bound.

    A 0-bit step from state x (its counter value X >= l) moves to base[x] = X - l, and
    X = n[s] + (states of s below x) < l + x unless n[s] = l: so it moves to a lower state,
    and runs[x] = 1 + runs[base[x]] is known when the states are visited upwards. A symbol
    holding all l states makes every step a 0-bit step that stays put (None: unbounded).
    """
    runs = np.zeros(table.states, dtype=np.int64)
    zero = np.flatnonzero(table.nb_bits == 0)
    for x in zero.tolist():
        b = int(table.base[x])
        if b >= x:
            return None
        runs[x] = 1 + runs[b]
    return int(runs.max()) if zero.size else 0


def zero_run_bound(norm: np.ndarray, log2_states: int) -> int | None:
    """An upper bound on `longest_zero_run` from the counts alone (None: unbounded).

    Only the most frequent symbol s can have 0-bit states (n[s] > l/2), and it has
    2 n[s] - l of them; a run visits each at most once since it only goes down.
    """
    l = fmt.states_of(log2_states)
    top = int(np.max(norm)) if np.size(norm) else 0
    if top >= l:
        return None
    return max(0, 2 * top - l)


def table_from_counts(counts: np.ndarray, log2_states: int) -> tuple[np.ndarray, DecodeTable, EncodeTable]:
    """Normalize raw counts and build both tables."""
    norm = normalize_counts(counts, log2_states)
    dec, enc = build_tables(norm, log2_states)
    return norm, dec, enc
