"""End-to-end compressed-sensing experiment (unrectify.cs.experiment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unrectify.cs import CSInputError
from unrectify.cs.experiment import RECORD_KEYS, run_cs_experiment

FAST = {"l1": {"max_iter": 100}, "tv": {"max_iter": 50}}
METHODS = ["pinv", "linear", "l1", "tv", "omp"]


def test_tiny_run_writes_all_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    records = run_cs_experiment(
        "digits", [0.1, 0.25], METHODS, train_samples=200, test_samples=10, noise=0.01,
        seed=0, out_dir=out, progress=False, method_options=FAST,
    )
    assert len(records) == 2 * len(METHODS)
    for rec in records:
        assert set(RECORD_KEYS) <= set(rec)
        assert rec["dataset"] == "digits" and rec["n_test"] == 10 and rec["n_train"] == 200
        assert 0 < rec["psnr"] < 100 and -1 <= rec["ssim"] <= 1 and rec["mse"] > 0
        assert rec["seconds_per_image"] >= 0 and rec["train_seconds"] >= 0
    assert {r["m"] for r in records} == {6, 16}
    linear = {r["ratio"]: r["psnr"] for r in records if r["method"] == "linear"}
    pinv = {r["ratio"]: r["psnr"] for r in records if r["method"] == "pinv"}
    assert linear[0.25] > pinv[0.25]  # a learned decoder beats the pseudo-inverse on digits

    assert json.loads((out / "results.json").read_text()) == records
    md = (out / "results.md").read_text()
    assert "| ratio | pinv | linear | l1 | tv | omp |" in md and "training budget" in md and "| 0.25 |" in md
    for name in ("psnr_vs_ratio.png", "grid_ratio0.1.png", "grid_ratio0.25.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "cifar"}, "unknown data set"),
        ({"methods": ["pinv", "magic"]}, "unknown decoder"),
        ({"methods": []}, "methods"),
        ({"ratios": [0.1, 0.0]}, "ratio"),
        ({"ratios": [1.5]}, "ratio"),
        ({"ratios": []}, "ratios"),
        ({"train_samples": 0}, "train_samples"),
        ({"test_samples": -3}, "test_samples"),
        ({"noise": -1.0}, "noise"),
        ({"method_options": {"adam": {"epochs": 1}}}, "not among methods"),
        ({"method_options": [1]}, "method_options must map"),
        ({"seed": -1}, "seed"),
        ({"seed": "a"}, "seed"),
        ({"snr_db": -1e308}, "snr_db must be between"),
        ({"out_dir": None}, "out_dir"),
        ({"methods": ["tv"], "method_options": {"tv": {"box": "maybe"}}}, "yes/no"),
    ],
)
def test_bad_input_raises_cs_input_error(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"dataset": "digits", "ratios": [0.1], "methods": ["pinv"], "train_samples": 20,
            "test_samples": 5, "out_dir": tmp_path, "progress": False}
    args.update(kwargs)
    with pytest.raises(CSInputError, match=match):
        run_cs_experiment(**args)
    assert not (tmp_path / "results.json").exists()


def test_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "o"
    res = subprocess.run([sys.executable, "-m", "unrectify", "cs", "--ratios", "25", "--methods", "pinv,linear",
                          "--train-samples", "50", "--test-samples", "5", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "PSNR (dB) / SSIM" in res.stdout
    assert (out / "results.json").exists() and (out / "results.md").exists()
    assert (out / "psnr_vs_ratio.png").exists() and list(out.glob("grid_ratio*.png"))
    for bad in (["--ratios", "150"], ["--methods", "magic"], ["--dataset", "cifar"], ["--ratios", "x"],
                ["--methods", "pinv,linear", "--option", "linear.alpha=abc"]):
        r = subprocess.run([sys.executable, "-m", "unrectify", "cs", *bad, "--out", str(tmp_path / "bad"),
                            "--no-progress"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert not (tmp_path / "bad" / "results.json").exists()
    # a second run into the same folder lists only its own figures
    res = subprocess.run([sys.executable, "-m", "unrectify", "cs", "--ratios", "50", "--methods", "pinv",
                          "--train-samples", "50", "--test-samples", "5", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    listed = res.stdout.strip().splitlines()[-1]
    assert "grid_ratio0.5.png" in listed and "grid_ratio0.25.png" not in listed


def test_stopped_run_keeps_finished_records(tmp_path: Path) -> None:
    """A run that dies at the second ratio leaves a complete results.partial.json with the
    first ratio's record and no results.json; a finished run removes the partial file."""
    from unrectify.cs.decoders import DECODERS, register_decoder
    from unrectify.cs.decoders.linear import PinvDecoder

    class Boom(PinvDecoder):
        name = "boom_test"

        def _reconstruct(self, Y):
            if self.m > 10:  # the second ratio
                raise KeyboardInterrupt
            return super()._reconstruct(Y)

    register_decoder("boom_test", Boom)
    try:
        out = tmp_path / "stopped"
        with pytest.raises(KeyboardInterrupt):
            run_cs_experiment("digits", [0.1, 0.25], ["boom_test"], train_samples=20, test_samples=5,
                              out_dir=out, progress=False)
        partial = json.loads((out / "results.partial.json").read_text())
        assert [(r["ratio"], r["method"]) for r in partial] == [(0.1, "boom_test")]
        assert not (out / "results.json").exists()
        done = tmp_path / "done"
        run_cs_experiment("digits", [0.1], ["pinv"], train_samples=20, test_samples=5, out_dir=done,
                          progress=False)
        assert (done / "results.json").exists() and not (done / "results.partial.json").exists()
    finally:
        DECODERS.pop("boom_test", None)


def test_snr_noise_budget_and_block_cs_records(tmp_path: Path) -> None:
    import numpy as np

    from unrectify.cs.datasets import TEST_IMAGES

    records = run_cs_experiment("patches", [0.1], ["pinv", "linear"], train_samples=300, test_samples=5,
                                seed=0, out_dir=tmp_path, progress=False, snr_db=20.0, budget=7.0)
    patch = [r for r in records if r["dataset"] == "patches"]
    block = [r for r in records if r["dataset"] == "patches-block"]
    assert [r["method"] for r in patch] == [r["method"] for r in block] == ["pinv", "linear"]
    for r in records:
        assert r["snr_db"] == 20.0 and r["noise"] > 0 and r["n_train"] == 300 and np.isfinite(r["psnr"])
        assert r["budget_s"] is None  # neither decoder has a training time limit
    for r in block:
        assert r["n_test"] == len(TEST_IMAGES) and set(r["per_image"]) == set(TEST_IMAGES)
        assert r["psnr"] == pytest.approx(np.mean([v["psnr"] for v in r["per_image"].values()]))
    # sigma = rms(clean measurements) * 10^(-20/20): the noise is a tenth of the signal rms
    from unrectify.cs import gaussian_operator, load_dataset, measure

    S = load_dataset("patches", "train", 300, seed=0)
    rms = np.sqrt(np.mean(measure(S, gaussian_operator(0.1, S.shape[1], seed=0)) ** 2))
    assert patch[0]["noise"] == pytest.approx(0.1 * rms)
    md = (tmp_path / "results.md").read_text()
    assert "whole test images, block CS" in md and "SNR 20 dB" in md
    assert (tmp_path / "psnr_vs_ratio_block.png").exists()
    with pytest.raises(CSInputError, match="snr_db"):
        run_cs_experiment("digits", [0.1], ["pinv"], out_dir=tmp_path / "x", progress=False, snr_db=float("nan"))
    with pytest.raises(CSInputError, match="block_cs"):
        run_cs_experiment("digits", [0.1], ["pinv"], out_dir=tmp_path / "x", progress=False, block_cs=True)


def test_markdown_compares_best_learned_with_classic_and_twins() -> None:
    from unrectify.cs.experiment import results_markdown

    def rec(ratio, method, p):
        return {"dataset": "digits", "ratio": ratio, "method": method, "psnr": p, "ssim": 0.5, "mse": 0.01,
                "seconds_per_image": 0.0, "train_seconds": 1.0, "n_train": 10, "n_test": 5, "noise": 0.0}

    recs = [rec(0.1, "tv", 20.0), rec(0.1, "linear", 21.0), rec(0.1, "res-adam", 22.0), rec(0.1, "res-alm", 21.5),
            rec(0.5, "tv", 30.0), rec(0.5, "linear", 25.0), rec(0.5, "res-adam", 29.0), rec(0.5, "res-alm", 29.2)]
    md = results_markdown(recs)
    assert "| 0.1 | res-adam 22.00 | tv 20.00 | 21.00 | yes |" in md
    assert "| 0.5 | res-alm 29.20 | tv 30.00 | 25.00 | no |" in md  # linear never counts as the best learned
    assert "| 0.1 | -0.50 |" in md and "| 0.5 | +0.20 |" in md


def test_option_values_are_read_as_a_user_means_them():
    """Names are stripped; yes/no words are bools (``bool('no')`` is True); nan/inf are floats;
    other text stays text (a solver name)."""
    import math

    from unrectify.cs.experiment import parse_option

    assert parse_option(" adam.clip = no") == ("adam", "clip", False)
    assert parse_option("tv.box=Yes") == ("tv", "box", True)
    assert parse_option("adam.hidden=[64, 64]") == ("adam", "hidden", [64, 64])
    method, key, value = parse_option("adam.lr=nan")
    assert (method, key) == ("adam", "lr") and math.isnan(value)
    assert parse_option("l1.cvxpy_solver=SCS") == ("l1", "cvxpy_solver", "SCS")


def test_records_hold_the_held_out_step_choices(tmp_path: Path) -> None:
    """With step candidates, results.json records every candidate's held-out MSE and the choice,
    for a residual decoder and for a hybrid's inner decoder."""
    records = run_cs_experiment(
        "digits", [0.25], ["res-alm", "tv+res-alm"], train_samples=200, test_samples=5, seed=0,
        out_dir=tmp_path / "run", progress=False, budget=1.0,
        method_options={"res-alm": {"hidden": (8,), "lr": [1e-3, 1e-2]},
                        "tv+res-alm": {"inner_options": {"hidden": (8,), "batch_size": [32, 64]}, "n_select": 20}},
    )
    by = {r["method"]: r["details"] for r in records}
    res, inner = by["res-alm"], by["tv+res-alm"]["inner"]
    assert [c["lr"] for c in res["step_choices"]] == [1e-3, 1e-2]
    assert [c["batch_size"] for c in inner["step_choices"]] == [32, 64]
    for d in (res, inner):
        best = min(d["step_choices"], key=lambda c: c["validation_mse"])
        assert d["step_chosen"] == [best["batch_size"], best["lr"]]
    assert "beta" in by["tv+res-alm"] and "consistency" in inner
    saved = {r["method"]: r["details"] for r in json.loads((tmp_path / "run" / "results.json").read_text())}
    assert saved["tv+res-alm"]["inner"]["step_chosen"] == inner["step_chosen"]


def test_budget_sets_training_limits_only(tmp_path):
    """``budget`` is the training time limit of decoders that have one; the generator prior's
    ``time_limit`` (seconds per image solve) is not set by it and it records no budget."""
    from unrectify.cs.decoders import decoder_class
    from unrectify.cs.experiment import _decoder_kwargs

    assert _decoder_kwargs(decoder_class("res-alm"), {}, (8, 8), False, 0, 5.0)["time_limit"] == 5.0
    assert "time_limit" not in _decoder_kwargs(decoder_class("prior"), {}, (8, 8), False, 0, 5.0)
    assert _decoder_kwargs(decoder_class("res-alm"), {"time_limit": 2.0}, (8, 8), False, 0, 5.0)["time_limit"] == 2.0


def test_cli_snr_range_is_the_experiments() -> None:
    """The CLI keeps its own copy of the SNR range (it starts without importing the experiment
    module); the copy must match, or the CLI would accept what the runner refuses."""
    from unrectify import cs_cli
    from unrectify.cs import experiment

    assert (cs_cli.MIN_SNR_DB, cs_cli.MAX_SNR_DB) == (experiment.MIN_SNR_DB, experiment.MAX_SNR_DB)
