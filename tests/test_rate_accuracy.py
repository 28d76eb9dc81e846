"""benchmarks/rate_accuracy.py: the multi-split aggregation on a hand-made example, and a real smoke run."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rate_accuracy as ra  # noqa: E402


def _p(method, setting, seed, bpw, acc):
    return {"method": method, "setting": setting, "seed": seed, "bits_per_weight": bpw, "accuracy": acc}


HAND = [
    # qat: s1 reaches mean 96.0 at 1.1 bits/weight, s2 mean 93.5 at 0.6
    _p("qat", "s1", 0, 1.0, 95.0), _p("qat", "s1", 1, 1.2, 97.0),
    _p("qat", "s2", 0, 0.5, 93.0), _p("qat", "s2", 1, 0.7, 94.0),
    # a setting that ran on one seed only: never chosen, however good
    _p("qat", "lucky", 0, 0.1, 99.0),
    # nncodec: mean 96.5 at 2.1, mean 95.6 at 1.5
    _p("nncodec", "qp a", 0, 2.0, 96.0), _p("nncodec", "qp a", 1, 2.2, 97.0),
    _p("nncodec", "qp b", 0, 1.4, 95.2), _p("nncodec", "qp b", 1, 1.6, 96.0),
]
FLOATS = {0: 96.0, 1: 97.0}      # mean 96.5


def test_lowest_bits_at_mean_accuracy_hand_made():
    s = ra.summarize(HAND, FLOATS, [0.5, 1.0, 3.0])
    assert s["float_accuracy_mean"] == pytest.approx(96.5)
    assert s["float_accuracy_std"] == pytest.approx(math.sqrt(0.5))
    qat = {e["setting"]: e for e in s["curves"]["qat"]}
    assert qat["s1"]["bits_per_weight_mean"] == pytest.approx(1.1)
    assert qat["s1"]["bits_per_weight_std"] == pytest.approx(math.sqrt(0.02))     # ddof = 1
    assert qat["s1"]["accuracy_mean"] == pytest.approx(96.0)
    assert qat["s1"]["accuracy_std"] == pytest.approx(math.sqrt(2.0))
    assert not qat["lucky"]["complete"] and qat["s2"]["complete"]
    half, one, three = s["levels"]
    # >= 96.0: qat s1 (96.0 counts, equality included); nncodec qp a (qp b's 95.6 is short)
    assert half["methods"]["qat"]["setting"] == "s1"
    assert half["methods"]["nncodec"]["setting"] == "qp a"
    assert half["fewer_bits_than_nncodec_percent"]["qat"] == pytest.approx(100 * (1 - 1.1 / 2.1))
    # >= 95.5: nncodec's qp b now counts
    assert one["methods"]["qat"]["bits_per_weight_mean"] == pytest.approx(1.1)
    assert one["methods"]["nncodec"]["bits_per_weight_mean"] == pytest.approx(1.5)
    # >= 93.5: qat s2 (mean exactly 93.5)
    assert three["methods"]["qat"]["setting"] == "s2"
    assert three["methods"]["qat"]["bits_per_weight_mean"] == pytest.approx(0.6)
    # nothing reaches an impossible level
    assert ra.summarize(HAND, FLOATS, [-5.0])["levels"][0]["methods"] == {"qat": None, "nncodec": None}


def test_curve_is_sorted_and_markdown_has_every_level():
    s = ra.summarize(HAND, FLOATS, [0.5, 1.0])
    bits = [e["bits_per_weight_mean"] for e in s["curves"]["qat"]]
    assert bits == sorted(bits)
    res = dict(s, model="m", data="d", n_train=1, n_test=1, coded_layers=["a"], coded_weights=1,
               methods=["qat", "nncodec"], status={})
    md = ra.markdown(res)
    assert "| 0.5 pt (>= 96.00%) | 1.100 ± 0.141 (96.00 ± 1.41%, s1) |" in md
    assert "| 1 pt | +26.7% |" in md            # 1 - 1.1/1.5


def test_real_quick_run_writes_consistent_files(tmp_path):
    from sw import container as ct
    out = tmp_path / "ra"
    argv = ["--quick", "--methods", "rtn", "qat", "--seeds", "0", "1", "--qat-targets", "1.5",
            "--ptq-targets", "1.0", "2.5", "--rtn-bins", "5", "15", "--out", str(out), "--quiet"]
    assert ra.main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    for f in ("results.json", "results.md", "rate_accuracy.png", "rate_accuracy.pdf"):
        assert (out / f).stat().st_size > 0
    assert (out / "rate_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "rate_accuracy.pdf").read_bytes()[:4] == b"%PDF"
    assert res["seeds"] == [0, 1] and res["coded_layers"] == ["conv2.weight", "fc1.weight", "fc2.weight"]
    by = {(p["method"], p["seed"]) for p in res["points"]}
    assert by == {(m, s) for m in ("rtn", "qat") for s in (0, 1)}
    # the stored summary is what the aggregation gives on the stored points
    again = ra.summarize(res["points"], {int(k): v for k, v in res["float_accuracy"].items()}, res["config"]["drops"])
    assert json.loads(json.dumps(again["levels"])) == res["levels"]
    # a QAT point's bits are its file's coded records, and its decode was checked against the checkpoint
    for p in (p for p in res["points"] if p["method"] == "qat"):
        c = ct.read(p["file"])
        names = c.metadata["coded"]
        assert names == res["coded_layers"]
        assert p["bits_per_weight"] == pytest.approx(ra.coded_bits(c, names) / sum(c[n].size for n in names))
        assert p["exact"] is True
        assert c.metadata["data"]["seed"] == p["seed"]         # the file records its split
    assert all(p["exact"] for p in res["points"])
    # every float model's accuracy is in the file; the cached float models are reused on a rerun
    ckpts = [Path(res["float_models"][s]["checkpoint"]) for s in ("0", "1")]
    stamps = [c.stat().st_mtime_ns for c in ckpts]
    assert ra.main(argv[:2] + ["rtn"] + argv[4:]) == 0
    assert [c.stat().st_mtime_ns for c in ckpts] == stamps
    rerun = json.loads((out / "results.json").read_text())
    assert rerun["float_accuracy"] == res["float_accuracy"]
    assert [p for p in rerun["points"] if p["method"] == "rtn"] == [p for p in res["points"] if p["method"] == "rtn"]
