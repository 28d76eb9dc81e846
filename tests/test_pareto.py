"""Pareto bit allocation: hulls and the allocator against brute force, its speed, activation quantizers,
the per-layer curves against direct measurement, exact decode of the result, the CLI."""
from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest
import torch

from sw import container as ct
from sw.cli.main import main
from sw.methods.pareto import Allocator, ParetoCurves, allocate, logit_mse, lower_convex_hull
from sw.models.zoo import build_model
from sw.quant.activations import ActivationQuantizer, capture_inputs, fake_quantized, index_entropy
from sw.tans import decode_reference
from sw.tans import format as fmt


def random_curve(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy decreasing rate-distortion curve (not convex: hull work to do)."""
    bits = np.sort(rng.uniform(10, 1000, m))
    dist = rng.uniform(0.5, 2.0) * np.exp(-bits / rng.uniform(100, 400)) * rng.uniform(0.7, 1.3, m)
    return bits, dist


# --- hulls and the allocator --------------------------------------------------------------------

def test_hull_is_the_set_of_lagrangian_minimizers():
    rng = np.random.default_rng(0)
    for _ in range(20):
        b, d = random_curve(rng, 25)
        h = lower_convex_hull(b, d)
        assert np.all(np.diff(b[h]) > 0) and np.all(np.diff(d[h]) < 0)
        slopes = -np.diff(d[h]) / np.diff(b[h])
        assert np.all(np.diff(slopes) < 0)                          # convex
        argmins = {int(np.argmin(d + lam * b)) for lam in np.geomspace(1e-7, 1e2, 3000)} | {int(np.argmin(d))}
        assert argmins <= set(h.tolist())                           # every minimizer is on the hull
        assert set(h.tolist()) <= argmins | {int(h[0])}             # and every vertex is one (grid permitting)


def test_allocation_against_brute_force():
    rng = np.random.default_rng(1)
    for trial in range(25):
        curves = [random_curve(rng, 6) for _ in range(4)]
        combos = list(itertools.product(range(6), repeat=4))
        tb = np.array([sum(curves[i][0][c[i]] for i in range(4)) for c in combos])
        td = np.array([sum(curves[i][1][c[i]] for i in range(4)) for c in combos])
        budget = rng.uniform(tb.min(), tb.max())
        al = allocate(curves, budget)
        assert al.met and al.bits <= budget + 1e-9
        assert al.bits == pytest.approx(sum(curves[i][0][j] for i, j in enumerate(al.choice)))
        assert al.dist == pytest.approx(sum(curves[i][1][j] for i, j in enumerate(al.choice)))
        # Everett: the Lagrangian choice is optimal for its own total; the fill only improves it
        assert al.lagrangian_dist <= td[tb <= al.lagrangian_bits + 1e-9].min() + 1e-12
        assert al.dist <= al.lagrangian_dist + 1e-12
        assert al.dist >= td[tb <= budget + 1e-9].min() - 1e-12      # never better than the true optimum


def test_infeasible_budget_and_generous_budget():
    rng = np.random.default_rng(2)
    curves = [random_curve(rng, 8) for _ in range(5)]
    lowest = sum(b.min() for b, _ in curves)
    al = allocate(curves, lowest - 1)
    assert not al.met and al.lam is None and al.bits == pytest.approx(lowest)
    al = allocate(curves, 1e12)
    assert al.met and al.dist == pytest.approx(sum(d.min() for _, d in curves))


def test_sweep_is_monotone():
    rng = np.random.default_rng(3)
    a = Allocator([random_curve(rng, 30) for _ in range(6)])
    s = a.sweep(np.geomspace(1e-8, 1.0, 200))
    assert np.all(np.diff(s[:, 0]) <= 1e-9) and np.all(np.diff(s[:, 1]) >= -1e-12)


def test_twenty_layers_allocate_in_under_a_second():
    rng = np.random.default_rng(4)
    curves = [random_curve(rng, 200) for _ in range(20)]
    t0 = time.perf_counter()
    a = Allocator(curves)
    lo, hi = sum(b.min() for b, _ in curves), sum(b.max() for b, _ in curves)
    results = [a.allocate(x) for x in np.linspace(lo, hi, 10)]
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"{elapsed:.2f} s for 10 budgets"
    assert all(r.met for r in results)
    assert all(r1.dist >= r2.dist - 1e-12 for r1, r2 in zip(results, results[1:]))


# --- activation quantizers -------------------------------------------------------------------------

def test_activation_quantizer_levels_and_rates():
    q = ActivationQuantizer(0.5, 4)
    x = torch.tensor([-1.0, 0.0, 0.2, 0.26, 0.74, 1.0, 1.6, 9.0])
    assert q.indices(x).tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert q(x).tolist() == [0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.5, 1.5]
    assert q.fixed_bits == 2 and ActivationQuantizer(1.0, 5).fixed_bits == 3
    assert index_entropy(np.array([0, 1, 2, 3] * 5), 4) == pytest.approx(2.0)
    assert index_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))
    with pytest.raises(ValueError):
        ActivationQuantizer(0.0, 4)
    with pytest.raises(ValueError):
        ActivationQuantizer(0.1, 1)


def test_fake_quantized_hooks_only_inside_the_block():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).eval()
    x = torch.randn(10, 4)
    q = ActivationQuantizer(0.3, 3)
    with torch.no_grad():
        ref = net(x)
        manual = net[2](q(torch.relu(net[0](x))))
        with fake_quantized(net, {"2": q}):
            got = net(x)
        after = net(x)
    assert torch.equal(got, manual) and not torch.equal(got, ref) and torch.equal(after, ref)
    assert torch.allclose(capture_inputs(net, ["2"], x, batch_size=3)["2"], torch.relu(net[0](x)).detach(), atol=1e-6)


# --- curves of a model, the container ----------------------------------------------------------------

@pytest.fixture(scope="module")
def curves():
    torch.manual_seed(0)
    net = build_model("lenet5", {"image_size": 8})
    calib = torch.rand(64, 1, 8, 8)
    return ParetoCurves(net, calib, "rtn", activations=True)


def test_curve_points_are_measured_end_to_end(curves):
    pc = curves
    assert list(pc.weight_curves) == ["conv2.weight", "fc1.weight", "fc2.weight"]
    assert list(pc.act_curves) == ["conv2", "fc1", "fc2", "fc3"]
    net = pc.model
    with torch.no_grad():
        ref = net(pc.calib).double()
    rng = np.random.default_rng(0)
    for c in pc.weight_curves.values():
        assert any(p.tensor.kind == fmt.KIND_RAW_INT8 for p in c.points)          # the 8-bit fallback
        assert {p.tensor.bins for p in c.points if p.tensor.kind == fmt.KIND_TANS} >= {3, 5, 31}
        for i in rng.choice(len(c.points), 3, replace=False):
            p = c.points[i]
            assert p.bits == ct.record_bits(p.tensor)                               # the whole record
            m = build_model("lenet5", {"image_size": 8})
            sd = net.state_dict()
            sd[c.name] = torch.from_numpy(np.ascontiguousarray(p.tensor.values()))
            m.load_state_dict(sd)
            with torch.no_grad():
                out = m.eval()(pc.calib).double()
            assert p.mse == pytest.approx(float(((out - ref) ** 2).sum() / out.numel()), rel=1e-9)
        hull = c.hull()
        assert len(hull) >= 4 and all(a.bits < b.bits and a.mse > b.mse for a, b in zip(hull, hull[1:]))
    for c in pc.act_curves.values():
        for p in c.points:
            q = p.quantizer
            with fake_quantized(net, {c.name: q}), torch.no_grad():
                out = net(pc.calib).double()
            assert p.mse == pytest.approx(logit_mse(out, ref), rel=1e-9)
            assert p.bits == pytest.approx(p.config["entropy_bits"] * c.count)
        assert c.points[0].mse > c.points[-1].mse        # 2 levels are worse than 256


def test_pareto_container_decodes_exactly_and_meets_the_target(curves):
    pc = curves
    for target in (0.7, 1.5, 3.0):
        choice, al = pc.pareto(target)
        c, info = pc.container(choice, {"model": "lenet5", "model_config": {"image_size": 8}})
        bits = sum(ct.record_bits(c[n]) for n in pc.coded)
        assert info["coded_bits"] == bits and al.met and bits <= target * pc.n_coded_weights()
        back = ct.from_bytes(ct.to_bytes(c))
        for n in pc.coded:
            t, p = back[n], pc.weight_curves[n].points[choice[n]]
            if t.kind == fmt.KIND_TANS:
                flat = decode_reference(t.coded)
                assert np.array_equal(t.unflatten(flat).astype(np.int64) - t.zero_point, p.integers.astype(np.int64))
            assert np.array_equal(t.values(golden=True), p.tensor.values())
        for n in pc.edges:
            assert back[n].kind == fmt.KIND_RAW_INT8
    # more bits, less predicted error; Pareto beats (or ties) equal allocation on its own curves' sum
    d = [pc.pareto(t)[1].dist for t in (0.7, 1.5, 3.0)]
    assert d[0] > d[1] > d[2]
    eq = pc.equal(1.5)
    eq_bits = sum(pc.weight_curves[n].points[i].bits for n, i in eq.items())
    ch, al = pc.pareto(eq_bits / pc.n_coded_weights())
    assert al.dist <= sum(pc.weight_curves[n].points[i].mse for n, i in eq.items()) + 1e-15


def test_joint_budget_with_activations(curves):
    pc = curves
    choice, al = pc.pareto(1.5, activation_bits=3.0)
    assert set(choice) == set(pc.weight_curves) | set(pc.act_curves)
    used = sum(pc.weight_curves[n].points[i].bits for n, i in choice.items() if n in pc.weight_curves) + \
        sum(pc.act_curves[n].points[i].bits for n, i in choice.items() if n in pc.act_curves)
    assert al.met and used <= 1.5 * pc.n_coded_weights() + 3.0 * pc.n_activations() + 1e-6
    c, info = pc.container(choice)
    assert set(c.metadata["activation_quantizers"]) == set(pc.act_curves)
    assert info["activation_fixed_bits_per_activation"] >= info["activation_entropy_bits_per_activation"] - 1e-9


def test_cerwu_index_choice_gives_cerwu_points():
    torch.manual_seed(1)
    net = build_model("lenet5", {"image_size": 8})
    pc = ParetoCurves(net, torch.rand(48, 1, 8, 8), "cerwu", prefilter=True)
    walks = {p.config.get("walk_lam") for c in pc.weight_curves.values() for p in c.points}
    assert len(walks - {None, 0.0}) > 0                                          # walked points survive
    choice, al = pc.pareto(1.0)
    assert al.met and al.bits <= 1.0 * pc.n_coded_weights()
    po = ParetoCurves(net, torch.rand(48, 1, 8, 8), "optq", prefilter=True)
    assert po.hessians and po.pareto(1.0)[1].met
    with pytest.raises(ValueError, match="rtn, optq or cerwu"):
        ParetoCurves(net, torch.rand(8, 1, 8, 8), "gptq")


# --- the command line -------------------------------------------------------------------------------

def test_cli_compress_pareto(tmp_path, capsys):
    ck = tmp_path / "float.ckpt"
    assert main(["train", "--float-only", "--data", "sklearn-digits", "--n-train", "300", "--n-test", "100",
                 "--float-epochs", "2", "--quiet", "-o", str(ck)]) == 0
    capsys.readouterr()
    out = tmp_path / "m.tans"
    rc = main(["compress", str(ck), "-o", str(out), "--method", "pareto", "--target-bits-per-weight", "1.2",
               "--calibration", "64", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["method"] == "pareto" and r["target_met"] and r["coded_bits_per_weight"] <= 1.2
    c = ct.read(out)
    assert all(np.array_equal(t.values(golden=True), t.values()) for t in c.tensors)
    rc = main(["evaluate", str(out), "--json"])
    ev = json.loads(capsys.readouterr().out)
    assert rc == 0 and 0 <= ev["decoded_accuracy"] <= 100
    rc = main(["compress", str(ck), "-o", str(tmp_path / "a.tans"), "--method", "pareto",
               "--target-bits-per-weight", "1.2", "--activation-bits", "3", "--calibration", "64", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["activations"] and "accuracy_with_quantized_activations" in r
    check_activations_and_init_from(tmp_path / "a.tans", r, tmp_path, capsys)
    rc = main(["compress", str(ck), "-o", str(tmp_path / "b.tans"), "--method", "optq", "--activation-bits", "3"])
    assert rc == 1 and "--activation-bits needs" in capsys.readouterr().err
    rc = main(["compress", str(ck), "-o", str(tmp_path / "b.tans"), "--activation-bits", "3"])
    assert rc == 1 and "--activation-bits needs" in capsys.readouterr().err
    rc = main(["compress", str(ck), "-o", str(tmp_path / "b.tans"), "--method", "pareto", "--lam", "0.1"])
    assert rc == 1 and "not --lam" in capsys.readouterr().err


# --- evaluate with the file's activation quantizers; retraining from a file (--init-from) -------------

def check_activations_and_init_from(src, r: dict, tmp_path, capsys):
    """A Pareto file with activation quantizers (`r`: its compress JSON): evaluate applies them;
    `train --init-from` starts from its integers and bins exactly and keeps the bins."""
    from sw.retrain import trainer_from_tans
    assert main(["evaluate", str(src), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert set(ev["activation_quantizers"]) == {a["module"] for a in r["activations"]}
    assert ev["decoded_accuracy"] == pytest.approx(r["accuracy_with_quantized_activations"])
    assert main(["evaluate", str(src)]) == 0
    assert "activations fake-quantized" in capsys.readouterr().out
    # retraining starts from the file's integers exactly, with its bins, and keeps them
    c = ct.read(src)
    tr = trainer_from_tans(src, tmp_path / "x.ckpt", progress=False, log=lambda *a, **k: None)
    for n, e in tr.qmodel.export().items():
        if c[n].kind == fmt.KIND_TANS:
            assert e["bins"] == c[n].bins and np.array_equal(e["integers"], c[n].integers())
    rt = tmp_path / "rt.ckpt"
    assert main(["train", "--init-from", str(src), "-o", str(rt), "--finetune-epochs", "1", "--quiet", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["phase"] == "done" and res["init_from"] == str(src)
    assert main(["compress", str(rt), "-o", str(tmp_path / "rt.tans")]) == 0
    capsys.readouterr()
    back = ct.read(tmp_path / "rt.tans")
    assert {n: back[n].bins for n in tr.qmodel.coded_names()} == {n: c[n].bins for n in tr.qmodel.coded_names()}
    assert main(["evaluate", str(tmp_path / "rt.tans"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact"] is True
    assert main(["train", "--init-from", str(tmp_path / "missing.tans"), "-o", str(tmp_path / "y.ckpt")]) == 1


@pytest.mark.parametrize("entry, match", [
    ([1, 2], "not an object"), ({"nope": {"step": 0.1, "levels": 4}}, "no such module"),
    ({"fc2": {"step": -1.0, "levels": 4}}, "step"), ({"fc2": {"step": float("nan"), "levels": 4}}, "step"),
    ({"fc2": {"step": 0.1, "levels": 1}}, "levels"), ({"fc2": {"step": 0.1, "levels": 1 << 20}}, "levels"),
    ({"fc2": {"step": 0.1, "levels": 3.5}}, "levels"), ({"fc2": "x"}, "not an object")])
def test_activation_quantizers_from_a_file_are_checked(entry, match):
    from sw.evaluation.activations import quantizers_from_metadata
    from sw.tans.errors import FormatError
    net = build_model("lenet5", {"image_size": 8})
    assert quantizers_from_metadata(None, net) == {}
    assert quantizers_from_metadata({"fc2": {"step": 0.5, "levels": 4}}, net)["fc2"] == ActivationQuantizer(0.5, 4)
    with pytest.raises(FormatError, match=match):
        quantizers_from_metadata(entry, net)


# --- the dead-zone quantizer (Eq. 1) -------------------------------------------------------------------

def test_dead_zone_rule_and_its_codebook_record():
    from sw.methods.deadzone import record
    from sw.quant import deadzone
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(0, 2, 4000))
    for beta in (0.25, 0.5, 1.0, 1.5):
        j = deadzone.indices(x, beta, 4)
        a = x.abs()
        assert torch.all((j == 0) == (a < (1 + beta) / 2))                        # the dead zone
        assert torch.all(j.abs() <= 4) and torch.all(torch.sign(j[j != 0]) == torch.sign(x[j != 0]))
        rec = deadzone.reconstruct(j, beta)
        assert torch.allclose(rec[j != 0].abs(), beta / 2 + j[j != 0].abs().double())
        inside = (j.abs() < 4) & (j != 0)                                          # nearest level outside the zone
        assert torch.all((a - rec.abs())[inside].abs() <= 0.5 + 1e-12)
        step = np.float32(0.0371)
        t = record("w", j.numpy().reshape(40, 100), np.array([step]), beta, fmt.NO_AXIS, 8, 64)
        assert np.array_equal(t.levels, deadzone.codebook(beta, 4)[0])       # QAT's export uses the same levels
        back = ct.from_bytes(ct.to_bytes(ct.Container([t], {})))["w"]
        assert back.quant == fmt.QUANT_CODEBOOK and back.bins == 9
        assert np.array_equal(back.symbols(golden=True).reshape(-1), j.numpy() + 4)  # zero-point bin indices
        want = (rec.numpy() * np.float64(step)).astype(np.float32).reshape(40, 100)
        assert np.array_equal(back.values(golden=True), want)
    with pytest.raises(ValueError, match="multiple"):
        deadzone.grid_of(0.3)


def test_dead_zone_points_in_pareto_curves_and_qat_files(tmp_path, capsys):
    from sw.quant.quantizers import zero_point_quantize
    torch.manual_seed(2)
    net = build_model("lenet5", {"image_size": 8})
    pc = ParetoCurves(net, torch.rand(32, 1, 8, 8), "rtn", prefilter=True, dead_zone=0.5)
    dz = [p for c in pc.weight_curves.values() for p in c.points if p.config.get("dead_zone")]
    assert dz and all(p.tensor.quant == fmt.QUANT_CODEBOOK for p in dz)
    choice, al = pc.pareto(2.0)
    c, _ = pc.container(choice, {"model": "lenet5", "model_config": {"image_size": 8}})
    back = ct.from_bytes(ct.to_bytes(c))
    assert all(np.array_equal(back[n].values(golden=True), pc.weight_curves[n].points[choice[n]].tensor.values())
               for n in pc.coded)
    # QAT: the trained reconstruction is Eq. 1's, and its file decodes to it exactly
    w = torch.linspace(-1, 1, 101)
    wq, q, step = zero_point_quantize(w, torch.tensor(1.0), 4, dead_zone=0.5)
    assert torch.allclose(wq[q != 0].abs(), (q[q != 0].abs() + 0.25) * step)
    ck = tmp_path / "dz.ckpt"
    assert main(["train", "--data", "sklearn-digits", "--n-train", "200", "--n-test", "50", "--float-epochs", "1",
                 "--qat-epochs", "1", "--finetune-epochs", "0", "--dead-zone", "0.5", "--target-bits-per-weight", "2",
                 "--quiet", "-o", str(ck)]) == 0
    assert main(["compress", str(ck), "-o", str(tmp_path / "dz.tans")]) == 0
    capsys.readouterr()
    assert ct.read(tmp_path / "dz.tans")["fc1.weight"].quant == fmt.QUANT_CODEBOOK
    assert main(["evaluate", str(tmp_path / "dz.tans"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact"] is True
    assert main(["train", "--data", "sklearn-digits", "--dead-zone", "0.3", "-o", str(tmp_path / "bad.ckpt")]) == 1
