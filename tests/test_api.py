"""The Python API (sw.api, docs/API.md): the doc's examples run, own factories and data, safe defaults."""
from __future__ import annotations

import re
import shlex
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from sw import api
from sw.cli.main import main

DOC = Path(__file__).resolve().parent.parent / "docs" / "API.md"


def doc_blocks(lang: str) -> list[str]:
    """The ```lang fenced blocks of docs/API.md, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_doc_examples_run(tmp_path, monkeypatch, capsys):
    """Every python block of docs/API.md, in order, in one namespace, in an empty folder; then the
    documented factory example (nets/small.py and its commands, with short epochs) through the CLI."""
    from sw.train import set_threads
    set_threads()       # one thread: many-threaded tiny ops crawl on a loaded machine (50 s instead of 1 s)
    monkeypatch.chdir(tmp_path)
    blocks = doc_blocks("python")
    assert len(blocks) >= 6
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), ns)
    out = capsys.readouterr().out
    assert "bits/weight over" in out and "decoded model:" in out and "exact: True" in out
    assert (tmp_path / "mlp.tans").exists() and (tmp_path / "mlp_qat.tans").exists()
    factory = next(b for b in blocks if "def cnn(" in b)
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "__init__.py").write_text("")
    (tmp_path / "nets" / "small.py").write_text(factory)
    path_before = list(sys.path)
    bash = next(b for b in doc_blocks("bash") if "nets.small:cnn" in b).replace("\\\n", " ")
    commands = [c for c in bash.splitlines() if c.startswith("python -m sw ")]
    assert len(commands) == 3
    for cmd in commands:
        argv = shlex.split(cmd)[3:]
        if argv[0] == "train":
            argv += ["--float-epochs", "1", "--qat-epochs", "1", "--finetune-epochs", "0", "--quiet"]
        assert main(argv) == 0, (cmd, capsys.readouterr().err)
    assert sys.path == path_before          # the working directory was on sys.path for the import only
    assert "decoded integers equal the checkpoint's" in capsys.readouterr().out
    rc = main(["compress", "cnn.ckpt", "-o", "x.tans"])        # the checkpoint alone may not choose the factory
    assert rc == 1 and "cannot make compress import code" in one_error_line(capsys)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny `train` checkpoint (MLP on 8x8 digits)."""
    d = tmp_path_factory.mktemp("api")
    cfg = {"model": "mlp", "model_config": {"hidden": [32, 32]}, "data": "sklearn-digits", "n_train": 200,
           "n_test": 60, "float_epochs": 1, "qat_epochs": 1, "finetune_epochs": 1, "target_bits_per_weight": 3.0}
    trainer, _ = api.train(cfg, d / "done.ckpt", progress=False, log=lambda *a, **k: None)
    assert trainer.phase == "done"
    return d


def test_unfinished_checkpoint_is_refused(finished, tmp_path, capsys):
    from sw.train import load_checkpoint, save_checkpoint
    state = load_checkpoint(finished / "done.ckpt")
    state["phase"], state["epoch"] = "qat", 1
    save_checkpoint(tmp_path / "qat.ckpt", state)
    rc = main(["compress", str(tmp_path / "qat.ckpt"), "-o", str(tmp_path / "x.tans")])
    err = one_error_line(capsys)
    assert rc == 1 and "phase 'qat'" in err and "--allow-unfinished" in err and not (tmp_path / "x.tans").exists()
    assert main(["compress", str(tmp_path / "qat.ckpt"), "-o", str(tmp_path / "x.tans"), "--allow-unfinished"]) == 0
    state["phase"], state["epoch"], state["results"] = "float", 0, {}
    save_checkpoint(tmp_path / "float.ckpt", state)        # a float phase that did not run its epochs
    rc = main(["compress", str(tmp_path / "float.ckpt"), "-o", str(tmp_path / "y.tans"), "--method", "rtn"])
    assert rc == 1 and "float phase stopped" in one_error_line(capsys)


def test_impossible_target_writes_no_checkpoint(tmp_path, capsys):
    ck = tmp_path / "t.ckpt"
    rc = main(["train", "--data", "sklearn-digits", "--model", "mlp", "--target-bits-per-weight", "0.05",
               "--quiet", "-o", str(ck)])
    assert rc == 1 and "leaves no room" in one_error_line(capsys) and not ck.exists()


def test_own_factory_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text("from torch import nn\n"
                                      "def needs(hidden):\n    return nn.Linear(64, hidden)\n"
                                      "def wide():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 99), nn.Linear(99, 10))\n"
                                      "def small(num_classes):\n    return nn.Linear(5, num_classes)\n")
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5), torch.nn.Linear(5, 10)).state_dict(),
               tmp_path / "sd.pt")
    rc = main(["train", "--model", "mine:needs", "--data", "sklearn-digits", "--quiet", "-o", "a.ckpt"])
    assert rc == 1 and "does not take the keyword arguments" in one_error_line(capsys)
    rc = main(["train", "--model", "mine:small", "--data", "sklearn-digits", "--quiet", "-o", "a.ckpt"])
    assert rc == 1 and "does not run on data set 'sklearn-digits'" in one_error_line(capsys)
    rc = main(["compress", "sd.pt", "--model", "mine:wide", "-o", "a.tans"])
    err = one_error_line(capsys)
    assert rc == 1 and "weights do not fit model 'mine:wide'" in err and "'1.weight'" in err
    rc = main(["compress", "sd.pt", "--model", "mine_missing:f", "-o", "a.tans"])
    assert rc == 1 and "cannot import model factory" in one_error_line(capsys)
    assert "mine" in sys.modules and str(tmp_path) not in sys.path


def test_data_factory_and_raw_fallback(tmp_path, monkeypatch, capsys):
    """A data factory returning torch Datasets; a 16x16 layer at 255 bins costs more coded than raw: kept raw."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata.py").write_text(
        "import torch\nfrom torch.utils.data import TensorDataset\n"
        "def pairs(seed=0):\n    g = torch.Generator().manual_seed(seed)\n"
        "    x, y = torch.randn(80, 1, 8, 8, generator=g), torch.randint(0, 10, (80,), generator=g)\n"
        "    return TensorDataset(x[:60], y[:60]), TensorDataset(x[60:], y[60:])\n")
    from sw.models.zoo import build_model
    torch.manual_seed(0)
    torch.save(build_model("mlp", {"hidden": [16, 16]}).state_dict(), tmp_path / "sd.pt")
    capsys.readouterr()
    rc = main(["compress", "sd.pt", "--model", "mlp", "--model-config", '{"hidden": [16, 16]}', "--bins", "255",
               "--data", "mydata:pairs", "-o", "m.tans"])
    out = capsys.readouterr().out
    assert rc == 0 and "fc2.weight: kept raw 8-bit" in out
    rows = {r["name"]: r for r in api.layers("m.tans")}
    assert rows["fc2.weight"]["kind"] != "tans"
    r = api.evaluate("m.tans", data="mydata:pairs", model="mlp")
    assert r["test_examples"] == 20 and r["exact"] is None


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels (and holds almost no data)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def make_folder(root: Path, n_train: int = 4, n_val: int = 2) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in ("ant", "bee", "cat"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (9 + i, 12, 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_imagefolder(tmp_path, capsys):
    from sw.data.datasets import load_dataset
    make_folder(tmp_path / "imgs")
    d = load_dataset(f"imagefolder:{tmp_path / 'imgs'}:10")
    assert d.x_train.shape == (12, 3, 10, 10) and len(d.x_test) == 6 and d.num_classes == 3
    assert d.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    x = d.x_train[torch.arange(12)]
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2
    trainer, res = api.train({"model": "mlp", "model_config": {"hidden": [8], "in_channels": 3, "image_size": 10},
                              "data": "imagefolder", "float_epochs": 1, "batch_size": 4, "val_fraction": 0.25},
                             tmp_path / "f.ckpt", data=d, stop_after="float", progress=False, log=lambda *a: None)
    assert trainer.phase == "float" and 0 <= res["float_accuracy"] <= 100
    bad = tmp_path / "imgs" / "train" / "bee" / "9.png"
    for payload, needle in ((b"\x89PNG\r\n\x1a\n not really", "not a readable image"),
                            (png_declaring(30000, 30000), "not a readable image")):
        bad.write_bytes(payload)
        rc = main(["train", "--data", f"imagefolder:{tmp_path / 'imgs'}:10", "--quiet", "-o", str(tmp_path / "b.ckpt")])
        err = one_error_line(capsys)
        assert rc == 1 and needle in err and "9.png" in err
    (tmp_path / "imgs" / "val" / "dog").mkdir()
    with pytest.raises(ValueError, match="not among the training classes"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")


def test_wide_image_is_cropped_before_it_is_resized(tmp_path):
    """A 40000x1 image (within the pixel limit) decodes to SIZE x SIZE without scaling its long
    side up first (that would need about 4 * 40000 * SIZE^2 bytes); the centre square is what is kept."""
    import tracemalloc

    from PIL import Image

    from sw.data.imagefolder import decode_image
    Image.new("L", (40000, 1)).save(tmp_path / "wide.png")
    tracemalloc.start()
    a = decode_image(tmp_path / "wide.png", 64)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert a.shape == (3, 64, 64) and peak < 20_000_000, peak
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255                    # the centre square is white, the sides black
    Image.fromarray(img).save(tmp_path / "c.png")
    b = decode_image(tmp_path / "c.png", 8)
    assert b.shape == (3, 8, 8) and float(b.mean()) > 0.9   # the whole picture squeezed would be 0.5


def test_devices(capsys):
    assert api.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="use cpu, cuda"):
        api.resolve_device("tpu")
    if not torch.cuda.is_available():
        rc = main(["train", "--device", "cuda", "--quiet", "-o", "never.ckpt"])
        assert rc == 1 and "no CUDA GPU" in one_error_line(capsys)


@pytest.mark.parametrize("method", ["rtn", "pareto"])
def test_compress_module_other_methods(method):
    """rtn without calibration and a Pareto allocation with it, on a small MLP; the result loads back."""
    from torch import nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    calib = None if method == "rtn" else torch.randn(64, 1, 8, 8)
    c, info = api.compress(net, method=method, calibration=calib, target_bits_per_weight=2.0)
    assert info["coded_bits_per_weight"] <= 2.0 and {r["name"] for r in api.layers(c)} == {"1.weight", "3.weight", "5.weight"}
    back = api.load_into(nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                       nn.Linear(32, 10)), c)
    assert torch.allclose(back[1].weight, net[1].weight, atol=float(net[1].weight.detach().abs().max()) / 100)


def test_failed_tuple_recode_leaves_no_file_and_all_raw_prints(tmp_path, capsys):
    """`compress --method rtn --tuple 4` whose bins^4 overflows the alphabet: one error line and no
    output file (the scalar-coded file is never written to -o); a model whose every layer stays
    raw prints "-" bits/weight instead of a traceback."""
    from sw.models import zoo
    for hidden in ([32, 32], [16]):
        torch.save(zoo.build_model("mlp", config={"hidden": hidden}).state_dict(), tmp_path / f"sd{len(hidden)}.pt")
    out = tmp_path / "out.tans"
    rc = main(["compress", str(tmp_path / "sd2.pt"), "--model", "mlp", "--model-config", '{"hidden": [32, 32]}',
               "--method", "rtn", "--bins", "31", "--tuple", "4", "--quiet", "-o", str(out)])
    assert rc == 1 and "31^4" in one_error_line(capsys) and not out.exists()
    rc = main(["compress", str(tmp_path / "sd1.pt"), "--model", "mlp", "--model-config", '{"hidden": [16]}',
               "--method", "rtn", "--bins", "31", "--quiet", "-o", str(out)])
    assert rc == 0 and out.exists() and " - bits/weight" in capsys.readouterr().out
