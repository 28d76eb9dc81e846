"""Post-training methods (rtn, OPTQ, CERWU) against small exact computations; the rate search; exact decode; the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from sw import container as ct
from sw.cli.main import main
from sw.data.datasets import load_dataset
from sw.evaluation.evaluate import evaluate_container
from sw.methods.hessian import collect_hessians, dampen
from sw.methods.optq import (gamma_of, histogram, inverse_cholesky, optq_walk, quantize_layer, rate_transform,
                             round_to_nearest)
from sw.methods.posttrain import PostTraining, post_train, weight_loss
from sw.models.zoo import build_model
from sw.tans import decode_reference
from sw.tans import format as fmt
from sw.train import accuracy


def spd(d: int, seed: int) -> torch.Tensor:
    """A well-conditioned random symmetric positive definite matrix (float64), like a calibration Hessian."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(d, 3 * d, generator=g, dtype=torch.float64)
    return 2 * x @ x.T / (3 * d) + 0.05 * torch.eye(d, dtype=torch.float64)


# --- the Hessian ---------------------------------------------------------------

def test_hessian_of_a_linear_layer_is_2xxt_over_n():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(7, 5)
    h = collect_hessians(model, ["0.weight", "2.weight"], x, batch_size=3)     # 3 batches: 3 + 3 + 1
    xn = x.double().numpy()
    assert np.allclose(h["0.weight"].numpy(), 2 * xn.T @ xn / 7, rtol=1e-12, atol=1e-12)
    a = torch.relu(model[0](x)).double().detach().numpy()                     # the second layer's inputs
    assert np.allclose(h["2.weight"].numpy(), 2 * a.T @ a / 7, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("conv,shape", [
    (nn.Conv2d(2, 3, 3, stride=2, padding=1), (4, 2, 7, 6)),
    (nn.Conv2d(2, 3, (3, 2), padding="same", dilation=(1, 2)), (3, 2, 5, 6)),
    (nn.Conv1d(2, 4, 3, padding=2, padding_mode="reflect"), (3, 2, 9)),
])
def test_hessian_of_a_convolution_from_its_patches(conv, shape):
    torch.manual_seed(1)
    x = torch.randn(*shape)
    h = collect_hessians(conv, ["weight"], x)["weight"].numpy()
    # by hand: every output position's input patch, flattened as weight.reshape(out, -1) is
    w = conv.weight.detach().double()
    k = w.shape[2:]
    ref = np.zeros_like(h)
    with torch.no_grad():
        y = conv(x).double() - conv.bias.double().reshape((1, -1) + (1,) * len(k))
    xp = x.double()
    if conv.padding_mode != "zeros":
        xp = F.pad(xp, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
    elif isinstance(conv.padding, str):   # "same": total d*(k-1), the smaller half first
        pads = []
        for kk, d in reversed(list(zip(k, conv.dilation))):
            t = d * (kk - 1)
            pads += [t // 2, t - t // 2]
        xp = F.pad(xp, pads)
    else:
        xp = F.pad(xp, [p for p in reversed(conv.padding) for _ in range(2)])
    for b in range(x.shape[0]):
        for pos in np.ndindex(*y.shape[2:]):
            idx = tuple(slice(p * s, p * s + d * (kk - 1) + 1, d)
                        for p, s, d, kk in zip(pos, conv.stride, conv.dilation, k))
            patch = xp[(b, slice(None)) + idx].reshape(-1).numpy()
            ref += 2 * np.outer(patch, patch) / x.shape[0]
            # the same patch gives the layer's output there: the column order is the weight's
            assert np.allclose(w.reshape(w.shape[0], -1).numpy() @ patch, y[(b, slice(None)) + pos].numpy(),
                               atol=1e-5)
    assert np.allclose(h, ref, rtol=1e-10, atol=1e-10)


def test_dampening_gives_dead_inputs_a_unit_diagonal():
    h = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 4.0]], dtype=torch.float64)
    hd, dead = dampen(h, 0.1)
    assert dead.tolist() == [False, True, False]
    mean = (2 + 1 + 4) / 3
    assert np.allclose(hd.numpy(), [[2 + 0.1 * mean, 0, 1], [0, 1 + 0.1 * mean, 0], [1, 0, 4 + 0.1 * mean]])


def test_layer_loss_is_the_mean_squared_output_error():
    """½ Σ ΔW H ΔWᵀ with H = 2XXᵀ/n is the mean over examples of ||ΔW x||² (the objective's first term)."""
    torch.manual_seed(2)
    lin = nn.Linear(6, 4, bias=False)
    x = torch.randn(9, 6)
    h = collect_hessians(lin, ["weight"], x)["weight"]
    dw = torch.randn(4, 6, dtype=torch.float64)
    lhs = 0.5 * float(((dw @ h) * dw).sum())
    rhs = float(((x.double() @ dw.T) ** 2).sum(dim=1).mean())
    assert lhs == pytest.approx(rhs, rel=1e-10)
    # the driver's loss of indices q on a grid of step s is the same figure for ΔW = W - q·s
    w = lin.weight.detach().double()
    q = torch.round(w / 0.1)
    out_err = ((x.double() @ (w - 0.1 * q).T) ** 2).sum(dim=1).mean()
    assert weight_loss(w, q, torch.tensor(0.1, dtype=torch.float64), h) == pytest.approx(float(out_err), rel=1e-10)


# --- the transform -------------------------------------------------------------

def test_rate_transform_against_numpy():
    g = torch.Generator().manual_seed(3)
    ws = 2 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    hs = spd(6, 4)
    gamma = gamma_of(ws)
    wn = ws.numpy()
    assert gamma == pytest.approx(1 / (np.log(2) * wn.var(ddof=1)), rel=1e-12)
    lam = 0.37
    wp, hp = rate_transform(ws, hs, gamma * lam)
    hp_ref = hs.numpy() + gamma * lam * np.eye(6)
    assert np.allclose(hp.numpy(), hp_ref, rtol=1e-13)
    assert np.allclose(wp.numpy(), wn @ hs.numpy() @ np.linalg.inv(hp_ref), rtol=1e-10, atol=1e-12)
    # it folds the Gaussian prior into the quadratic: ½(w-q)H(w-q)ᵀ + ½γλ|q|² - ½(w'-q)H'(w'-q)ᵀ is the same for every q
    def gap(q: np.ndarray) -> float:
        d, dp = wn - q, wp.numpy() - q
        return float(0.5 * np.einsum("ri,ij,rj->", d, hs.numpy(), d) + 0.5 * gamma * lam * (q * q).sum()
                     - 0.5 * np.einsum("ri,ij,rj->", dp, hp_ref, dp))
    rng = np.random.default_rng(0)
    gaps = [gap(rng.integers(-3, 4, size=(4, 6)).astype(float)) for _ in range(5)]
    assert np.allclose(gaps, gaps[0], rtol=1e-9, atol=1e-9)


def test_inverse_cholesky_factor():
    h = spd(7, 5)
    u = inverse_cholesky(h)
    assert torch.equal(u, torch.triu(u))
    assert np.allclose((u.T @ u).numpy(), np.linalg.inv(h.numpy()), rtol=1e-10, atol=1e-12)


# --- OPTQ and CERWU --------------------------------------------------------------

def naive_optq(w: np.ndarray, h: np.ndarray, max_index: int) -> np.ndarray:
    """OBS quantization, one weight at a time: round, spread the error with the inverse Hessian, eliminate the column."""
    w = w.copy()
    hinv = np.linalg.inv(h)
    q = np.zeros(w.shape, dtype=np.int64)
    for j in range(w.shape[1]):
        for r in range(w.shape[0]):
            q[r, j] = int(np.clip(np.rint(w[r, j]), -max_index, max_index))
            err = (w[r, j] - q[r, j]) / hinv[j, j]
            for k in range(j + 1, w.shape[1]):
                w[r, k] -= err * hinv[j, k]
        hinv = hinv - np.outer(hinv[:, j], hinv[j, :]) / hinv[j, j]
    return q


def test_optq_with_lambda_zero_equals_a_plain_reference():
    g = torch.Generator().manual_seed(6)
    ws = 1.7 * torch.randn(9, 12, generator=g, dtype=torch.float64)
    hs = spd(12, 7)
    q = quantize_layer("optq", ws, hs, 3)
    ref = naive_optq(ws.numpy(), hs.numpy(), 3)
    assert np.array_equal(q.numpy(), ref)
    assert not np.array_equal(ref, round_to_nearest(ws, 3).numpy())     # the OBS update changed indices
    assert np.array_equal(quantize_layer("cerwu", ws, hs, 3, lam=0.0).numpy(), ref)


def test_optq_lowers_the_layer_loss_against_rounding():
    g = torch.Generator().manual_seed(8)
    ws = 1.3 * torch.randn(20, 16, generator=g, dtype=torch.float64)
    mix = torch.randn(16, 4, generator=g, dtype=torch.float64)      # correlated inputs, as real layers see
    x = mix @ torch.randn(4, 200, generator=g, dtype=torch.float64) + 0.3 * torch.randn(16, 200, generator=g,
                                                                                        dtype=torch.float64)
    hs = 2 * x @ x.T / 200
    def loss(q):
        d = ws - q.double()
        return float(((d @ hs) * d).sum())
    assert loss(quantize_layer("optq", ws, hs, 7)) < 0.5 * loss(quantize_layer("rtn", ws, hs, 7))


def test_large_lambda_drives_every_index_to_the_most_probable_bin():
    g = torch.Generator().manual_seed(10)
    ws = 1.5 * torch.randn(8, 10, generator=g, dtype=torch.float64)
    hs = spd(10, 11)
    # the walk's rate term alone: prior counts whose most probable index is +2
    prior = torch.ones(7, dtype=torch.float64)
    prior[3 + 2] = 50.0
    q = optq_walk(ws, inverse_cholesky(hs), 3, lam=1e9, prior=prior)
    assert bool((q == 2).all())
    assert not bool((optq_walk(ws, inverse_cholesky(hs), 3, lam=1e-9, prior=prior) == 2).all())
    # CERWU end to end (transform, its Cholesky factor, γ-corrected rate): everything to the most probable bin, 0
    q = quantize_layer("cerwu", ws, hs, 3, lam=1e9)
    assert bool((q == 0).all())
    # and a vanishing λ is OPTQ
    assert torch.equal(quantize_layer("cerwu", ws, hs, 3, lam=1e-12), quantize_layer("optq", ws, hs, 3))


def test_cerwu_trades_loss_for_rate():
    g = torch.Generator().manual_seed(12)
    ws = 2.0 * torch.randn(30, 24, generator=g, dtype=torch.float64)
    hs = spd(24, 13)
    def entropy(q):
        p = histogram(q, 7)
        p = p[p > 0] / p.sum()
        return float(-(p * torch.log2(p)).sum())
    scale = float(torch.diagonal(hs).mean()) / gamma_of(ws)
    ent = [entropy(quantize_layer("cerwu", ws, hs, 7, lam=t * scale)) for t in (0.0, 0.05, 0.5, 5.0)]
    assert ent[0] > ent[1] > ent[2] > ent[3]


# --- the driver: rate target, fallback, exact decode ------------------------------

@pytest.fixture(scope="module")
def small_lenet():
    torch.manual_seed(0)
    net = build_model("lenet5", {"image_size": 8})
    calib = torch.randn(96, 1, 8, 8)
    return net, calib


@pytest.fixture(scope="module")
def cerwu_points(small_lenet):
    net, calib = small_lenet
    return PostTraining(net, calib, "cerwu", progress=False)


def coded_layer_bits(c: ct.Container, names: list[str]) -> int:
    return sum(ct.record_bits(c[n]) for n in names)        # body, length and CRC


@pytest.mark.parametrize("target", [0.8, 1.5, 3.0])
def test_rate_search_meets_the_target(cerwu_points, target):
    pt = cerwu_points
    c, info = pt.container(target)
    n = pt.n_coded_weights()
    assert info["target_met"] and info["coded_weights"] == n
    bits = coded_layer_bits(c, pt.coded)            # the actual records, every byte of each counted
    assert info["coded_bits"] == bits
    assert info["coded_bits_per_weight"] == pytest.approx(bits / n)
    assert bits / n <= target
    assert info["lam"] is not None and info["lam"] >= 0
    # the search itself (before the local search on the joint divergence, which may also give bits back)
    rounds = pt.refine_rounds
    try:
        pt.refine_rounds = 0
        plain = pt.select(target)[0]
    finally:
        pt.refine_rounds = rounds
    assert target * 0.95 <= pt._bits(plain) / n <= target     # hull points of this small model are coarse at 3 bits


def test_rate_search_for_every_method(small_lenet):
    net, calib = small_lenet
    for method in ("rtn", "optq"):
        c, info = post_train(net, calib, method, target_bits_per_weight=1.2)
        assert 1.2 * 0.95 <= info["coded_bits_per_weight"] <= 1.2
        assert c.metadata["method"] == method and c.metadata["post_training"] is True
    c, info = post_train(net, None, "rtn", target_bits_per_weight=1.2)       # data-free
    assert info["coded_bits_per_weight"] <= 1.2 and info["calibration_examples"] == 0
    with pytest.raises(ValueError, match="calibration"):
        post_train(net, None, "optq", target_bits_per_weight=1.2)
    with pytest.raises(ValueError, match="exactly one"):
        post_train(net, calib, "optq")


def test_a_fixed_lambda_picks_the_lagrangian_point(cerwu_points):
    pt = cerwu_points
    lo = pt.container(lam=pt.container(1.0)[1]["lam"] / 100)[1]["coded_bits"]
    hi = pt.container(lam=pt.container(1.0)[1]["lam"] * 100)[1]["coded_bits"]
    assert lo > hi
    lam = 1e-3
    choice, _, _ = pt.select(lam=lam)
    for name, i in choice.items():
        best = min(p.score + lam * p.bits for p in pt.points[name])
        assert pt.points[name][i].score + lam * pt.points[name][i].bits == best


def test_exact_decode_with_the_golden_decoder(cerwu_points):
    pt = cerwu_points
    c, info = pt.container(1.0, metadata={"model": "lenet5", "model_config": {"image_size": 8},
                                          "data": {"spec": "sklearn-digits", "n_train": 200, "n_test": 60, "seed": 3}})
    back = ct.from_bytes(ct.to_bytes(c))
    choice, _, _ = pt.select(1.0)
    for name in pt.names:
        t = back[name]
        if name in pt.coded:
            chosen = pt.points[name][choice[name]]
            want = chosen.integers.astype(np.int64)
            if chosen.kind == "tans":
                assert t.kind == fmt.KIND_TANS and t.quant == fmt.QUANT_ZERO_POINT
                assert t.bins % 2 == 1 and t.zero_point == (t.bins - 1) // 2 and t.bins <= 31
                flat = decode_reference(t.coded)                            # the golden decoder, flat lane order
                assert np.array_equal(t.unflatten(flat).astype(np.int64) - t.zero_point, want)
                assert t.lane_axis == 1 and t.coded.lanes <= 64 and t.shape[1] % t.coded.lanes == 0
        else:
            assert t.kind == fmt.KIND_RAW_INT8                                  # first and last: 8-bit
            want = pt.edge_points[name].integers.astype(np.int64)
        assert np.array_equal(t.integers(golden=True), want)
        assert np.array_equal(t.values(golden=True), t.values())
    assert back["fc1.bias"].kind == fmt.KIND_RAW_F32
    m = back.metadata
    assert m["data"] == {"spec": "sklearn-digits", "n_train": 200, "n_test": 60, "seed": 3}
    assert m["method"] == "cerwu" and m["lam"] == info["lam"] and m["kind"] == "sw-model-1"
    assert [r["name"] for r in m["layers"]] == pt.names
    assert all({"kind", "bits", "bins", "step"} <= set(r) for r in m["layers"])
    # the decoded model is the quantized one
    net = build_model("lenet5", {"image_size": 8})
    net.load_state_dict({t.name: torch.from_numpy(np.ascontiguousarray(t.values(golden=True))) for t in back.tensors})
    x = torch.randn(5, 1, 8, 8)
    ref = build_model("lenet5", {"image_size": 8})
    ref.load_state_dict({t.name: torch.from_numpy(np.ascontiguousarray(t.values())) for t in c.tensors})
    assert torch.equal(net(x), ref(x))


def test_refinement_on_the_joint_divergence(cerwu_points):
    """The local search never leaves the budget or raises the whole model's divergence, and the divergence
    it compares is the one of the container it returns (every coded layer decoded and swapped in)."""
    pt = cerwu_points
    n = pt.n_coded_weights()
    rounds = pt.refine_rounds
    try:
        pt.refine_rounds = 0
        plain = {t: pt.select(t)[0] for t in (0.8, 1.5)}
    finally:
        pt.refine_rounds = rounds
    ref = F.log_softmax(pt._outputs({}), dim=1)
    for t, before in plain.items():
        after = pt.select(t)[0]
        assert pt._bits(after) <= t * n
        assert pt.joint_divergence(after) <= pt.joint_divergence(before)
        back = ct.from_bytes(ct.to_bytes(pt.container(t)[0]))
        state = dict(pt.model.state_dict())          # float edges, as the divergence of `select` has them
        state.update({x: torch.from_numpy(np.ascontiguousarray(back[x].values(golden=True))) for x in pt.coded})
        net = build_model("lenet5", {"image_size": 8})
        net.load_state_dict(state)
        net.eval()
        with torch.no_grad():
            out = net(pt._calib).double()
        kl = float(F.kl_div(F.log_softmax(out, dim=1), ref, log_target=True, reduction="sum") / len(out))
        assert pt.joint_divergence(after) == pytest.approx(kl, rel=1e-4, abs=1e-9)


def test_optq_grids_reach_low_rates():
    """OPTQ's error feedback keeps indices away from 0 on coarse grids (the rounding errors pile up in
    the later columns), so its grids must run far past a few standard deviations to reach low rates."""
    g = torch.Generator().manual_seed(14)
    torch.manual_seed(14)
    w = torch.distributions.StudentT(3.0).sample((128, 128)) * 0.05
    x = torch.randn(256, 128, generator=g) @ (torch.eye(128) + 0.3 * torch.randn(128, 128, generator=g))
    lin = nn.Linear(128, 128, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    net = nn.Sequential(nn.Linear(128, 128), lin, nn.Linear(128, 4))
    pt = PostTraining(net, x, "optq", allocation="layer", progress=False)
    grids = [p for p in pt.points["1.weight"] if p.kind == "tans"]
    lowest = min(p.bits for p in grids) / w.numel()
    old_range = min(p.bits for p in grids if p.config["step_factor"] <= 6.0) / w.numel()    # the earlier range
    assert lowest < 0.2 and lowest < old_range / 2, (lowest, old_range)


def test_a_layer_whose_coding_does_not_pay_stays_8bit():
    torch.manual_seed(4)
    # one weight: its int8 record (1 byte and a step) is smaller than any tANS record (k-bit state,
    # table fields, step coding) even with version-2 compact records
    net = nn.Sequential(nn.Linear(4, 1), nn.ReLU(), nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2))
    x = torch.randn(32, 4)
    pt = PostTraining(net, x, "optq", allocation="layer", progress=False)     # every point kept
    c, info = pt.container(8.0)
    t = c["2.weight"]
    assert t.kind == fmt.KIND_RAW_INT8
    assert ct.record_bits(t) < min(p.bits for p in pt.points["2.weight"] if p.kind == "tans")
    assert info["layers"][1]["kind"] == "int8" and c.metadata["int8"] == ["0.weight", "2.weight", "4.weight"]
    c, info = PostTraining(net, x, "optq", progress=False).container(8.0)
    assert c["2.weight"].kind == fmt.KIND_RAW_INT8 and c.metadata["coded"] == []


# --- the command line: train --float-only, compress --method, evaluate on the recorded split -------

def run_json(capsys, argv):
    capsys.readouterr()
    rc = main(argv + ["--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def test_cli_float_only_then_post_training(tmp_path, capsys):
    ck = tmp_path / "float.ckpt"
    rc, tr = run_json(capsys, ["train", "--float-only", "--data", "sklearn-digits", "--n-train", "300",
                               "--n-test", "100", "--seed", "3", "--float-epochs", "2", "--quiet", "-o", str(ck)])
    assert rc == 0 and tr["phase"] == "float" and "float_accuracy" in tr
    state = torch.load(ck, map_location="cpu", weights_only=True)
    assert state["phase"] == "float"
    assert (state["config"]["data"], state["config"]["n_train"], state["config"]["n_test"],
            state["config"]["seed"]) == ("sklearn-digits", 300, 100, 3)
    rc, comp = run_json(capsys, ["compress", str(ck), "-o", str(tmp_path / "m.tans"), "--method", "optq",
                                 "--target-bits-per-weight", "1.5", "--calibration", "64"])
    assert rc == 0 and 1.5 * 0.9 <= comp["coded_bits_per_weight"] <= 1.5     # the local search may give bits back
    assert comp["data"] == {"spec": "sklearn-digits", "n_train": 300, "n_test": 100, "seed": 3}
    rc, ev = run_json(capsys, ["evaluate", str(tmp_path / "m.tans")])
    assert rc == 0 and ev["exact"] is None and ev["test_examples"] == 100
    assert ev["float_accuracy"] == tr["float_accuracy"]
    # scored on seed 3's test split, not seed 0's
    c = ct.read(tmp_path / "m.tans")
    net = build_model("lenet5", c.metadata["model_config"])
    net.load_state_dict({t.name: torch.from_numpy(np.ascontiguousarray(t.values(golden=True))) for t in c.tensors})
    d3 = load_dataset("sklearn-digits", 300, 100, 3)
    assert ev["decoded_accuracy"] == accuracy(net, d3.x_test, d3.y_test)
    assert evaluate_container(tmp_path / "m.tans")["decoded_accuracy"] == ev["decoded_accuracy"]
    # a float-phase checkpoint without --method: a clear error naming the way out
    capsys.readouterr()
    rc = main(["compress", str(ck), "-o", str(tmp_path / "x.tans")])
    assert rc == 1 and "--method" in capsys.readouterr().err


def test_cli_post_training_of_a_state_dict(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_model("lenet5", {"image_size": 8}).state_dict(), tmp_path / "sd.pt")
    rc, out = run_json(capsys, ["compress", str(tmp_path / "sd.pt"), "--model", "lenet5", "--model-config",
                                '{"image_size": 8}', "--method", "optq", "--lam", "0.001", "--data",
                                "sklearn-digits", "--seed", "2", "--calibration", "32", "-o", str(tmp_path / "sd.tans")])
    assert rc == 0 and out["lam"] == 0.001 and out["method"] == "optq"
    assert out["data"] == {"spec": "sklearn-digits", "n_train": 1400, "n_test": 397, "seed": 2}
    capsys.readouterr()
    rc = main(["compress", str(tmp_path / "sd.pt"), "--model", "lenet5", "--model-config", '{"image_size": 8}',
               "--method", "cerwu", "-o", str(tmp_path / "x.tans")])
    err = capsys.readouterr().err
    assert rc == 1 and "--data" in err and "Traceback" not in err
