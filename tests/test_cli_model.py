"""CLI: train/compress/evaluate/report end to end on a tiny run, and clear one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sw.cli.main import main
from sw.models.zoo import build_model


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rc = main(["train", "--data", "sklearn-digits", "--n-train", "200", "--n-test", "60", "--float-epochs", "1",
               "--qat-epochs", "1", "--finetune-epochs", "0", "--target-bits-per-weight", "2", "--quiet",
               "-o", str(d / "ck.pt")])
    assert rc == 0
    return d


def run_json(capsys, argv):
    capsys.readouterr()
    rc = main(argv + ["--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_compress_evaluate_report(cli_run, capsys, tmp_path):
    d = cli_run
    rc, comp = run_json(capsys, ["compress", str(d / "ck.pt"), "-o", str(d / "m.tans")])
    assert rc == 0 and comp["coded_weights"] > 0 and comp["total_bytes"] == (d / "m.tans").stat().st_size
    rc, ev = run_json(capsys, ["evaluate", str(d / "m.tans")])
    assert rc == 0 and ev["exact"] is True and ev["decoded_accuracy"] == ev["quantized_accuracy"]
    rc, rep = run_json(capsys, ["report", str(d / "m.tans"), "--plot", str(tmp_path / "p")])
    assert rc == 0 and {r["name"] for r in rep["layers"]} >= {"fc1.weight", "conv1.weight"}
    assert (tmp_path / "p" / "bins_per_layer.png").exists() and (tmp_path / "p" / "memory_per_layer.png").exists()


def test_train_refuses_to_overwrite(cli_run, capsys):
    rc = main(["train", "--quiet", "-o", str(cli_run / "ck.pt")])
    err = capsys.readouterr().err
    assert rc == 1 and "--resume" in err and "Traceback" not in err


def test_resume_of_finished_run(cli_run, capsys):
    rc = main(["train", "--resume", "--quiet", "-o", str(cli_run / "ck.pt")])
    assert rc == 0 and "already finished" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["compress", "{d}/nope.ckpt", "-o", "{d}/x.tans"], "nope.ckpt: no such file"),
    (["evaluate", "{d}/nope.tans"], "nope.tans: no such file"),
    (["train", "--resume", "-o", "{d}/nope.ckpt"], "nope.ckpt: no such file"),
    (["compress", "{d}/garbage.bin", "-o", "{d}/x.tans"], "not a checkpoint or state_dict"),
    (["compress", "{d}/lenet.pt", "-o", "{d}/x.tans"], "needs --model"),
    (["compress", "{d}/lenet.pt", "--model", "resnet18", "-o", "{d}/x.tans"], "do not fit model 'resnet18'"),
    (["compress", "{d}/lenet.pt", "--model", "vgg99", "-o", "{d}/x.tans"], "unknown model 'vgg99'"),
    (["evaluate", "{d}/damaged.tans"], "CRC mismatch"),
    (["report", "{d}/damaged.tans"], "CRC mismatch"),
    (["evaluate", "{d}/garbage.bin"], "not a .tans file"),
])
def test_errors_are_one_line(cli_run, tmp_path, capsys, argv, needle):
    (tmp_path / "garbage.bin").write_bytes(b"hello, not a model" * 10)
    torch.save(build_model("lenet5", {}).state_dict(), tmp_path / "lenet.pt")
    main(["compress", str(cli_run / "ck.pt"), "-o", str(tmp_path / "ok.tans")])
    data = bytearray((tmp_path / "ok.tans").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "damaged.tans").write_bytes(bytes(data))
    capsys.readouterr()
    rc = main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_evaluate_wrong_model_flag(cli_run, tmp_path, capsys):
    main(["compress", str(cli_run / "ck.pt"), "-o", str(tmp_path / "ok.tans")])
    capsys.readouterr()
    rc = main(["evaluate", str(tmp_path / "ok.tans"), "--model", "resnet18"])
    err = capsys.readouterr().err
    assert rc == 1 and "do not fit model 'resnet18'" in err


def test_post_training_state_dict(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(build_model("lenet5", {"image_size": 8}).state_dict(), tmp_path / "sd.pt")
    rc, out = run_json(capsys, ["compress", str(tmp_path / "sd.pt"), "--model", "lenet5", "--model-config",
                                '{"image_size": 8}', "--bins", "7", "--data", "sklearn-digits",
                                "-o", str(tmp_path / "sd.tans")])
    assert rc == 0 and out["coded_weights"] > 0
    rc, ev = run_json(capsys, ["evaluate", str(tmp_path / "sd.tans")])
    assert rc == 0 and ev["exact"] is None and 0 <= ev["decoded_accuracy"] <= 100


def test_subprocess_exit_code_without_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "sw", "evaluate", str(tmp_path / "missing.tans")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "no such file" in p.stderr
