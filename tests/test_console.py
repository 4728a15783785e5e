"""What a run prints: the results table whole (with M_EER) when the output is not a terminal,
Lightning's log lines once, no warnings that do not apply."""

from __future__ import annotations

import logging

import pandas as pd

from engine.console import print_results_table, single_lightning_log


def _result(auc: float, eer: float) -> dict:
    block = {"auc": auc, "eer": eer, "ap": 0.5, "acc": 0.5}
    return {"metrics": {"frame": block, "video": block}, "predictions": pd.DataFrame({"score": [0.1, 0.9]})}


def test_results_table_is_not_cut_and_has_m_eer(capsys):
    tests = {"a_rather_long_test_set_name_wilddeepfake": _result(0.91234, 0.2), "dfdc": _result(0.8, 0.3)}
    print_results_table(tests, "experiment: test metrics (best val/auc on validation of the training domains)",
                        {"frame": 0.3, "video": None})
    out = capsys.readouterr().out  # captured: not a terminal
    assert "a_rather_long_test_set_name_wilddeepfake" in out and "0.9123" in out
    assert "…" not in out and max(len(line) for line in out.splitlines()) > 80
    m_eer = next(line for line in out.splitlines() if "M_EER" in line)
    assert "0.3000" in m_eer and "nan" in m_eer


def test_lightning_lines_are_printed_once():
    root = logging.getLogger()
    added = logging.StreamHandler()
    root.addHandler(added)
    lightning = logging.getLogger("lightning.pytorch")
    own = logging.StreamHandler()
    lightning.addHandler(own)
    try:
        single_lightning_log()
        assert own not in lightning.handlers and lightning.propagate
    finally:
        root.removeHandler(added)
        lightning.removeHandler(own)


def test_no_ddp_warning_without_ddp(caplog):
    from engine.pipeline import ddp_strategy

    class Detector:
        ddp_find_unused_parameters = True

    with caplog.at_level(logging.WARNING):
        assert ddp_strategy(None, Detector()) is None
    assert not caplog.records


def test_no_random_init_warning_for_a_requested_random_clip(caplog):
    from detectors.backbones.clip import build_clip

    with caplog.at_level(logging.WARNING):
        build_clip("ViT-B-16", None, size="tiny")
    assert not [r for r in caplog.records if "No pretrained weights" in r.getMessage()]


def test_model_summary_drops_unmeasured_flops(capsys):
    from callbacks.model_summary import ModelSummary

    data = [(" ", ["0"]), ("Name", ["net"]), ("Type", ["Linear"]), ("Params", ["10"]), ("Mode", ["train"]), ("FLOPs", ["0"])]
    ModelSummary.summarize(data, 10, 10, 0.0, {"train": 1, "eval": 0}, total_flops=0)
    out = capsys.readouterr().out
    assert "FLOPs" not in out and "Total params" in out and "Linear" in out
    ModelSummary.summarize(data, 10, 10, 0.0, {"train": 1, "eval": 0}, total_flops=2000)
    assert "Total FLOPs" in capsys.readouterr().out


def test_pretraining_and_tokenizer_show_progress(capsys):
    """The tiny-CLIP pretraining and the dVAE tokenizer training report progress (rich), instead of
    printing nothing until they end."""
    import torch

    from detectors.dvae import DVAEConfig, train_dvae
    from engine.synthetic_pretraining import PretrainingRecipe, pretrain_tiny_clip

    images = torch.randn(8, 3, 32, 32)
    pretrain_tiny_clip("ViT-B-16", 32, images, torch.tensor([0, 1] * 4), ["a real face", "a fake face"],
                       PretrainingRecipe(epochs=2, batch_size=4, warmup_steps=1))
    train_dvae(images, patch_size=8, config=DVAEConfig(vocab_size=16, hidden_channels=8, codebook_dim=8, steps=3, batch_size=4))
    out = capsys.readouterr().out
    assert "tiny CLIP pretraining" in out and "4/4" in out
    assert "dVAE tokenizer" in out and "3/3" in out
