"""Build-time parameters of the tANS decoder core, validated once for every tool that builds it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sw.tans import format as fmt

WORD_BITS = (8, 16, 32, 64)
MAX_UNITS = 8
MAX_CORE_LANES = 1 << 16
MAX_SYMBOL_BITS = 16


class ParamError(ValueError):
    """A parameter set that no decoder can be built for (message is one line, for users)."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class DecoderParams:
    """Shape of one decoder core: table size, symbol width, lane vector, decode units, input word."""

    log2_states: int = fmt.DEFAULT_LOG2_STATES
    symbol_bits: int = 5
    lanes: int = fmt.DEFAULT_LANES
    units: int = 1
    word_bits: int = 32

    def __post_init__(self) -> None:
        for name in ("log2_states", "symbol_bits", "lanes", "units", "word_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamError(f"{name} must be an integer, got {value!r}")
        if not fmt.MIN_LOG2_STATES <= self.log2_states <= fmt.MAX_LOG2_STATES:
            raise ParamError(f"states must be a power of two from {1 << fmt.MIN_LOG2_STATES} to "
                             f"{1 << fmt.MAX_LOG2_STATES}, got 2**{self.log2_states}")
        if not 1 <= self.symbol_bits <= MAX_SYMBOL_BITS:
            raise ParamError(f"symbol bits must be 1..{MAX_SYMBOL_BITS}, got {self.symbol_bits}")
        if not 1 <= self.lanes <= MAX_CORE_LANES:
            raise ParamError(f"lanes must be 1..{MAX_CORE_LANES}, got {self.lanes}")
        if not 1 <= self.units <= MAX_UNITS:
            raise ParamError(f"units must be 1..{MAX_UNITS}, got {self.units}")
        if self.word_bits not in WORD_BITS:
            raise ParamError(f"word bits must be one of {WORD_BITS}, got {self.word_bits}")

    @classmethod
    def from_states(cls, states: int, **kw: int) -> "DecoderParams":
        """Parameters for a table of `states` entries (must be a power of two)."""
        if isinstance(states, bool) or not isinstance(states, int) or states < 1 or states & (states - 1):
            raise ParamError(f"states must be a power of two from {1 << fmt.MIN_LOG2_STATES} to "
                             f"{1 << fmt.MAX_LOG2_STATES}, got {states!r}")
        return cls(log2_states=states.bit_length() - 1, **kw)

    # --- derived widths -----------------------------------------------------
    @property
    def states(self) -> int:
        return 1 << self.log2_states

    @property
    def nb_width(self) -> int:
        """Width of a table entry's nb_bits field (holds 0..log2_states)."""
        return fmt.table_field_bits(self.log2_states, 1)["nb_bits"]

    @property
    def entry_bits(self) -> int:
        return self.symbol_bits + self.nb_width + self.log2_states

    @property
    def lane_bits(self) -> int:
        """Width of a lane index."""
        return max(1, (self.lanes - 1).bit_length())

    @property
    def lane_count_bits(self) -> int:
        """Width of a lane count (0..lanes)."""
        return self.lanes.bit_length()

    @property
    def groups(self) -> int:
        """Lane groups per round: lanes are decoded `units` at a time."""
        return _ceil_div(self.lanes, self.units)

    @property
    def max_take(self) -> int:
        """Most bits one cycle can consume (every unit reading a full state)."""
        return self.units * self.log2_states

    def window_words_for(self, ahead: int) -> int:
        """Words the bit buffer holds so a group can be issued every cycle.

        A group is issued only if the buffered bits cover `ahead` reads of P*k bits (see
        BitBuffer); the window keeps that many bits beyond a partly read word and a word being
        refilled, and at least the words one read can touch.
        """
        t, w = self.max_take, self.word_bits
        return max(_ceil_div(w + 2 * t - 1, w) + 1, _ceil_div(ahead * t + 2 * w + t - 1, w))

    def to_dict(self) -> dict[str, int]:
        d = asdict(self)
        d["states"] = self.states
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
