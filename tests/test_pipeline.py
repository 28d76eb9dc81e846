"""Compress / golden decode / evaluate exactness, post-training compression, report and plots."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sw import container as ct
from sw.methods.compress import compress_checkpoint, compress_module
from sw.evaluation.evaluate import check_against_checkpoint, evaluate_container
from sw.models.zoo import build_model
from sw.evaluation.report import format_table, plot, summarize
from sw.tans import format as fmt
from sw.methods.qat import Trainer, TrainConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    cfg = TrainConfig(model="lenet5", data="sklearn-digits", n_train=300, n_test=100, batch_size=32,
                      float_epochs=2, qat_epochs=2, finetune_epochs=1, target_bits_per_weight=1.5, lam_lr=0.2)
    t = Trainer(cfg, d / "ck.pt", progress=False, log=lambda *a: None)
    t.run()
    compress_checkpoint(d / "ck.pt", d / "m.tans")
    return d, t


def test_container_layout(trained):
    d, t = trained
    c = ct.read(d / "m.tans")
    assert c.metadata["model"] == "lenet5" and c.metadata["coded"] == ["conv2.weight", "fc1.weight", "fc2.weight"]
    fc1 = c["fc1.weight"]
    assert fc1.kind == fmt.KIND_TANS and fc1.quant == fmt.QUANT_ZERO_POINT
    # lanes of whole input channels, at most 64 (the default hardware core)
    assert fc1.lane_axis == 1 and fc1.coded.lanes <= 64 and fc1.shape[1] % fc1.coded.lanes == 0
    assert c["conv2.weight"].coded.lanes == c["conv2.weight"].shape[1]   # 6 input channels, one lane each
    assert 5 <= fc1.coded.log2_states <= 8 and fc1.bins % 2 == 1   # the table size with the smallest record and fc1.zero_point == (fc1.bins - 1) // 2
    assert c["conv1.weight"].kind == fmt.KIND_RAW_INT8 and c["fc3.weight"].kind == fmt.KIND_RAW_INT8
    assert c["fc1.bias"].kind == fmt.KIND_RAW_F32


def test_golden_decode_equals_quantized(trained):
    d, t = trained
    c = ct.read(d / "m.tans")
    exported = t.qmodel.export()
    for name, e in exported.items():
        assert np.array_equal(c[name].integers(golden=True), e["integers"]), name
        assert np.array_equal(c[name].values(golden=True), e["values"]), name
        assert np.array_equal(c[name].values(), e["values"]), name    # fast decoder agrees
    assert check_against_checkpoint(c, d / "ck.pt")["exact"]


def test_evaluate_reports_same_accuracy_as_quantized_model(trained):
    d, t = trained
    r = evaluate_container(d / "m.tans")
    assert r["exact"] is True and r["mismatched_layers"] == []
    assert r["decoded_accuracy"] == r["quantized_accuracy"]
    assert r["float_accuracy"] == t.results["float_accuracy"]


def test_same_run_in_another_folder_gives_the_same_bytes(trained, tmp_path):
    """Checkpoints and .tans files are byte-reproducible: nothing in them depends on the folder
    they were written in (the metadata names the checkpoint relative to the .tans file)."""
    import shutil
    from sw.train import load_checkpoint, save_checkpoint
    d, _ = trained
    state = load_checkpoint(d / "ck.pt")
    for sub in ("a", "b/deeper"):
        save_checkpoint(tmp_path / sub / "ck.pt", state)
        compress_checkpoint(tmp_path / sub / "ck.pt", tmp_path / sub / "m.tans")
    assert (tmp_path / "a/ck.pt").read_bytes() == (tmp_path / "b/deeper/ck.pt").read_bytes()
    assert (tmp_path / "a/m.tans").read_bytes() == (tmp_path / "b/deeper/m.tans").read_bytes()
    assert ct.read(tmp_path / "a/m.tans").metadata["checkpoint"] == "ck.pt"
    # the pair moves together: evaluate still finds and checks the checkpoint
    shutil.move(str(tmp_path / "a"), str(tmp_path / "moved"))
    r = evaluate_container(tmp_path / "moved" / "m.tans")
    assert r["exact"] is True and r["checkpoint"] == str((tmp_path / "moved" / "ck.pt").resolve())


def test_mismatch_is_detected(trained, tmp_path):
    d, t = trained
    c = ct.read(d / "m.tans")
    e = t.qmodel.export()["fc2.weight"]
    ints = e["integers"].copy()
    ints.flat[0] = -ints.flat[0] if ints.flat[0] else 1
    zp = c["fc2.weight"].zero_point
    bad = ct.tans_tensor("fc2.weight", ints + zp, lanes=ints.shape[1], lane_axis=1, quant=fmt.QUANT_ZERO_POINT,
                         bins=c["fc2.weight"].bins, zero_point=zp, steps=e["steps"], step_axis=0)
    c.tensors = [bad if x.name == "fc2.weight" else x for x in c.tensors]
    chk = check_against_checkpoint(c, d / "ck.pt")
    assert not chk["exact"] and chk["mismatched_layers"] == ["fc2.weight"]


def test_report_and_plots(trained, tmp_path):
    d, _ = trained
    c = ct.read(d / "m.tans")
    s = summarize(c, d / "m.tans")
    coded = [r for r in s["layers"] if r["kind"] == "tans"]
    assert len(coded) == 3 and s["coded_weights"] == sum(r["weights"] for r in coded)
    assert s["coded_bits_per_weight"] >= s["entropy_bits_per_weight"]     # tANS cannot beat the bound
    assert s["total_bytes"] == (d / "m.tans").stat().st_size
    assert "fc1.weight" in format_table(s)
    files = plot(s, tmp_path / "plots")
    assert sorted(f.rsplit(".", 1)[1] for f in files) == ["pdf", "pdf", "png", "png"]
    for f in files:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n" if f.endswith(".png") else \
            open(f, "rb").read(5) == b"%PDF-"


def test_post_training_compression_of_a_user_module(tmp_path):
    torch.manual_seed(0)
    net = build_model("resnet18", {"image_size": 8})
    c, qm = compress_module(net, tmp_path / "r.tans", bins=9, model_name="resnet18",
                            model_config={"image_size": 8})
    back = build_model("resnet18", {"image_size": 8})
    from sw.evaluation.evaluate import decoded_state_dict
    back.load_state_dict(decoded_state_dict(ct.read(tmp_path / "r.tans")))
    qm.eval()
    x = torch.randn(2, 1, 8, 8)
    back.eval()
    assert torch.equal(back(x), qm(x))
    assert c["layers.0.conv1.weight"].bins == 9
    assert c["layers.0.bn1.num_batches_tracked"].kind == fmt.KIND_RAW_F32


def test_code_first_last_option(tmp_path):
    torch.manual_seed(0)
    net = build_model("lenet5", {"image_size": 8})
    c, qm = compress_module(net, tmp_path / "all.tans", bins=5, code_first_last=True)
    assert all(qm.coded.values())
    assert c["conv1.weight"].kind == fmt.KIND_TANS and c["fc3.weight"].kind == fmt.KIND_TANS
    assert c["conv1.weight"].bins == 5
    back = ct.read(tmp_path / "all.tans")
    assert np.array_equal(back["fc3.weight"].values(golden=True), qm.export()["fc3.weight"]["values"])


def test_lanes_hold_whole_input_channels_within_the_cap():
    from sw.methods.compress import lanes_for
    assert lanes_for((120, 400), 64) == (8, 1)       # the fewest lanes that keep P = 1 at full rate
    assert lanes_for((84, 120), 64) == (8, 1)
    assert lanes_for((120, 400), 64, min_lanes=28) == (40, 1)   # a P = 4 core wants 28 or more
    assert lanes_for((120, 400), 64, min_lanes=0) == (50, 1)    # most lanes within the cap
    assert lanes_for((16, 6, 5, 5), 64) == (6, 1)    # fewer channels than 8: one lane each
    assert lanes_for((10, 97), 64) == (1, 1)         # a prime count above the cap: one lane
    assert lanes_for((120, 400), 0, min_lanes=0) == (400, 1)    # no cap
    assert lanes_for((7,), 64) == (1, fmt.NO_AXIS)


def test_lanes_for_a_multi_unit_core():
    from sw.methods.layout import PIPELINE_DEPTH, lanes_for_units
    from hw.core.decoder import PIPELINE_DEPTH as CORE_DEPTH
    assert PIPELINE_DEPTH == CORE_DEPTH                     # sw may not import hw: the same number twice
    assert lanes_for_units((16, 6, 5, 5), 4, 6) == 28       # too few channels: lanes split them
    assert lanes_for_units((120, 256), 4, 8) == 32          # whole channels, a multiple of P
    assert lanes_for_units((84, 120), 4, 8) == 40           # 30 divides 120 but 40 fills every group
    assert lanes_for_units((84, 120), 4, 40) == 40          # already enough
    assert lanes_for_units((84, 120), 1, 8) == 8
    assert lanes_for_units((16, 6, 5, 5), 4, 6, max_lanes=16) == 6     # the cap wins
    assert lanes_for_units((4, 6, 3, 3), 4, 6) == 6         # 216 weights: 28 lanes would hold < 16 each
    assert lanes_for_units((16, 6, 3, 3), 4, 6) == 28
    assert lanes_for_units((16, 6, 3, 3), 4, 6, tuple_size=4) == 6    # 216 symbols in 4-tuples: too few


def test_compress_for_a_multi_unit_core(tmp_path, capsys):
    """`compress --decoder-units 4`: the same weights over more lanes (golden decode), conv2's 6
    channels split into 28 lanes; the CLI says which lanes each layer got."""
    from sw.api import compress_file
    from sw.cli.main import main
    torch.manual_seed(0)
    torch.save(build_model("lenet5").state_dict(), tmp_path / "sd.pt")
    one, _ = compress_file(tmp_path / "sd.pt", tmp_path / "one.tans", model="lenet5", bins=5)
    assert main(["compress", str(tmp_path / "sd.pt"), "-o", str(tmp_path / "p4.tans"), "--model", "lenet5",
                 "--bins", "5", "--decoder-units", "4"]) == 0
    assert "lanes for a 4-unit core:" in capsys.readouterr().out
    four = ct.read(tmp_path / "p4.tans")
    lanes = {t.name: t.coded.lanes for t in four.tensors if t.kind == fmt.KIND_TANS}
    assert lanes["conv2.weight"] == 28 and lanes["fc1.weight"] == 40 and lanes["fc2.weight"] == 40   # (120, 400), (84, 120)
    for t in four.tensors:
        assert np.array_equal(t.values(golden=t.name == "conv2.weight"), one[t.name].values()), t.name
    extra = (tmp_path / "p4.tans").stat().st_size - (tmp_path / "one.tans").stat().st_size
    assert 0 < extra < 200            # about one initial state per extra lane
    with pytest.raises(ValueError, match="--decoder-units"):
        compress_file(tmp_path / "sd.pt", tmp_path / "bad.tans", model="lenet5", bins=5, units=-1)
