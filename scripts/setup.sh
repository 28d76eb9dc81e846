#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine: a venv in .venv with the
# pinned toolchain (PyPI only) and, where apt is available, Icarus Verilog for the
# second-simulator test. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing the project and its pinned toolchain into .venv"
log=$(mktemp)
if ! .venv/bin/python -m pip install --quiet -e ".[test]" >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" | tail -30 >&2
  echo "setup failed: pip could not install the project" >&2; exit 1
fi
rm -f "$log"
.venv/bin/python -c "import sw, hw, sim, torch, amaranth, cocotb, numba" || {
  echo "setup failed: the project does not import in .venv" >&2; exit 1; }

if ! command -v iverilog >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Icarus Verilog (apt)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
  else
    echo "note: iverilog is missing and apt-get is not usable here; install Icarus Verilog" \
         "for the second-simulator test" >&2
  fi
fi
# Verilator's FST writer (WAVES=fst) compiles against lz4 and zlib headers
if [ ! -e /usr/include/lz4.h ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing the lz4 headers for FST waveforms (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblz4-dev zlib1g-dev >/dev/null || \
    echo "note: liblz4-dev could not be installed; WAVES=fst will not build (WAVES=1 still does)" >&2
fi
echo "== setup done"
