"""Under the Trainer a detector's frozen parts stay in eval mode, as its own ``train()`` says
(``BaseDetector.on_train_start``; docs/ARCHITECTURE.md, "BaseDetector"). Each test fits through a Trainer with a
validation between two epochs."""

from __future__ import annotations

import lightning as L
import torch
from conftest import compose
from hydra.utils import instantiate
from torch.nn.modules.batchnorm import _BatchNorm


class ModesAtEveryBatch(L.Callback):
    def __init__(self, probe):
        self.probe = probe
        self.seen: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(self.probe(pl_module))


def fit_two_epochs(cfg, callback) -> L.LightningModule:
    L.seed_everything(0, verbose=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.detector, _convert_="all")
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(model, datamodule=datamodule)
    return model


def test_dfmoe_frozen_gate_batchnorms_keep_their_statistics_under_the_trainer(tmp_path, synthetic_root):
    cfg = compose(["experiment=dfmoe_ffpp", "scale=demo"], tmp_path, synthetic_root)
    assert cfg.detector.gate_frozen_scales == 1
    model_before = instantiate(cfg.detector, _convert_="all")
    frozen_names = {name for name, m in model_before.gate.backbone.named_modules() if m in model_before.gate._frozen_norms}
    assert frozen_names

    def frozen_in_training(pl_module) -> list[str]:
        return [n for n, m in pl_module.gate.backbone.named_modules() if n in frozen_names and m.training]

    callback = ModesAtEveryBatch(frozen_in_training)
    model = fit_two_epochs(cfg, callback)
    assert len(callback.seen) == 4 and callback.seen == [[]] * 4  # both epochs: before and after a validation
    modules = dict(model.gate.backbone.named_modules())
    initial = dict(model_before.gate.backbone.named_modules())
    for name in frozen_names:  # running statistics start at 0 / 1 in every model: the frozen ones are still there
        assert int(modules[name].num_batches_tracked) == 0, name
        torch.testing.assert_close(modules[name].running_mean, initial[name].running_mean)
        torch.testing.assert_close(modules[name].running_var, initial[name].running_var)
    trained = [m for n, m in modules.items() if isinstance(m, _BatchNorm) and n not in frozen_names]
    assert trained and all(int(m.num_batches_tracked) == 4 for m in trained)  # the trainable ones do train


def test_the_linear_probe_encoder_stays_in_eval_under_the_trainer(tmp_path, synthetic_root):
    cfg = compose(["experiment=baseline_ffpp", "detector=clip_linear_probe", "scale=demo"], tmp_path, synthetic_root)
    callback = ModesAtEveryBatch(lambda pl_module: (pl_module.encoder.training, pl_module.head.training))
    fit_two_epochs(cfg, callback)
    assert callback.seen == [(False, True)] * 4
