"""Corruptions at five severities (DeeperForensics-1.0 definitions) and the robustness evaluation:
severity 0 is the identity, every corruption damages a fixed image more at each level, the
parameters and amplitudes are DF's, and a checkpoint's report and figures are written."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from scipy import ndimage

from detectors.output import DetectorOutput
from engine.robustness import (
    CompareCommand,
    EvaluateCommand,
    RobustnessError,
    RobustnessSettings,
    build_report,
    evaluate_corruptions,
    evaluate_run,
    load_settings,
    main,
    parse_command_line,
)
from evaluation.metrics import METRIC_NAMES
from evaluation.plots import curve, plot_robustness_report
from evaluation.results import atomic_write_json, build_results, write_results
from evaluation.robustness import (
    CORRUPTIONS,
    SEVERITIES,
    VIDEO_CORRUPTIONS,
    CorruptImage,
    CorruptionError,
    block_wise,
    contrast,
    corrupt,
    corrupt_video,
    corruption_parameter,
    gaussian_blur,
    psnr,
    rgb_to_ycbcr,
)


def natural_image(height: int = 96, width: int = 80, seed: int = 0) -> np.ndarray:
    """Texture at several scales (like a photo): fine, medium and coarse structure."""
    rng = np.random.default_rng(seed)
    field = sum(ndimage.gaussian_filter(rng.normal(0, 1, (height, width, 3)), (s, s, 0)) * s for s in (1, 3, 8))
    return np.clip(128 + 40 * field / field.std(), 0, 255).astype(np.uint8)


IMAGE = natural_image()
IMAGE_CORRUPTIONS = [name for name in CORRUPTIONS if name not in VIDEO_CORRUPTIONS]


@pytest.mark.parametrize("name", IMAGE_CORRUPTIONS)
def test_severity_zero_is_the_identity(name):
    out = corrupt(IMAGE, name, 0)
    assert out.dtype == np.uint8 and np.array_equal(out, IMAGE) and out is not IMAGE


@pytest.mark.parametrize("name", IMAGE_CORRUPTIONS)
def test_psnr_falls_strictly_with_severity(name):
    values = [psnr(IMAGE, corrupt(IMAGE, name, severity)) for severity in (0, *SEVERITIES)]
    print(name, [round(v, 2) for v in values])
    assert values[0] == math.inf
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert all(corrupt(IMAGE, name, s).shape == IMAGE.shape for s in SEVERITIES)


def test_parameters_are_the_deeperforensics_levels():
    levels = {name: [corruption_parameter(name, s) for s in SEVERITIES] for name in CORRUPTIONS}
    assert levels["saturation"] == [0.4, 0.3, 0.2, 0.1, 0.0]
    assert levels["contrast"] == [0.85, 0.725, 0.6, 0.475, 0.35]
    assert levels["block_wise"] == [16, 32, 48, 64, 80]
    assert levels["gaussian_noise"] == [0.001, 0.002, 0.005, 0.01, 0.05]
    assert levels["gaussian_blur"] == [7, 9, 13, 17, 21]
    assert levels["pixelation"] == [2, 3, 4, 5, 6]
    assert levels["h264"] == [30, 32, 35, 38, 40]
    sigmas = [k / 6 for k in levels["gaussian_blur"]]
    assert all(a < b for a, b in zip(sigmas, sigmas[1:]))  # blur sigma grows
    assert all(a > b for a, b in zip(levels["jpeg"], levels["jpeg"][1:]))  # JPEG quality falls
    assert corruption_parameter("jpeg", 2, {"jpeg": [95, 85, 75, 65, 55]}) == 85


def test_blur_is_a_gaussian_of_sigma_k_over_6():
    impulse = np.zeros((41, 41, 3), dtype=np.uint8)
    impulse[20, 20] = 255
    for kernel_size in (7, 21):
        row = gaussian_blur(impulse, kernel_size)[20, :, 0].astype(np.float64)
        offsets = np.arange(kernel_size) - kernel_size // 2
        weights = np.exp(-(offsets**2) / (2 * (kernel_size / 6) ** 2))
        weights /= weights.sum()
        expected = np.zeros(41)
        expected[20 - kernel_size // 2 : 21 + kernel_size // 2] = 255 * weights * weights[kernel_size // 2]
        assert np.abs(row - expected).max() <= 0.5 + 1e-9  # equal up to the uint8 rounding


def test_contrast_scales_and_truncates_like_deeperforensics():
    out = contrast(IMAGE, 0.6)
    assert np.array_equal(out, np.floor(IMAGE * 0.6).astype(np.uint8))


def test_saturation_zero_leaves_a_grey_image():
    grey = corrupt(IMAGE, "saturation", 5)
    assert int(np.abs(grey.astype(int) - grey[..., :1].astype(int)).max()) <= 1
    chroma = [rgb_to_ycbcr(corrupt(IMAGE, "saturation", s))[..., 1:].std() for s in (0, *SEVERITIES)]
    assert all(a > b for a, b in zip(chroma, chroma[1:]))


def test_block_wise_counts_grow_and_contain_each_other():
    flat = np.full((512, 512, 3), 200, dtype=np.uint8)
    grey = [np.all(corrupt(flat, "block_wise", s) == 128, axis=-1) for s in SEVERITIES]
    # 512 px: DF's count is level x (512 // 256) blocks of 8 x 8 px; overlaps only lower it.
    for severity, mask in zip(SEVERITIES, grey):
        blocks = 2 * corruption_parameter("block_wise", severity)
        assert 0.8 * blocks * 64 <= mask.sum() <= blocks * 64
    assert all((low & ~high).sum() == 0 for low, high in zip(grey, grey[1:]))  # nested
    small = np.full((64, 64, 3), 200, dtype=np.uint8)
    out = block_wise(small, 16, np.random.default_rng(0))
    assert 0 < (out == 128).all(-1).sum() <= 16 * 4  # side scaled to 2 px below 256 px


def test_noise_has_deeperforensics_amplitude():
    grey = np.full((256, 256, 3), 128, dtype=np.uint8)
    variance = corruption_parameter("gaussian_noise", 3)
    noisy = corrupt(grey, "gaussian_noise", 3)
    luma = rgb_to_ycbcr(noisy)[..., 0] * 255 - rgb_to_ycbcr(grey)[..., 0] * 255
    expected = math.sqrt(variance) * 255 * 255 / 219
    assert luma.std() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("name", ["block_wise", "gaussian_noise", "uniform_noise"])
def test_random_corruptions_are_reproducible_per_seed(name):
    first, again = corrupt(IMAGE, name, 3, seed=1), corrupt(IMAGE, name, 3, seed=1)
    other = corrupt(IMAGE, name, 3, seed=2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_uniform_noise_has_the_variance_of_the_gaussian_noise_and_is_bounded():
    """DTN Fig. 5 swaps DF-1.0's Gaussian noise for uniform noise: same variance, bounded support."""
    grey = np.full((256, 256, 3), 128, dtype=np.uint8)
    variance = corruption_parameter("uniform_noise", 3)
    assert variance == corruption_parameter("gaussian_noise", 3)
    luma = rgb_to_ycbcr(corrupt(grey, "uniform_noise", 3))[..., 0] * 255 - rgb_to_ycbcr(grey)[..., 0] * 255
    expected_std = math.sqrt(variance) * 255 * 255 / 219
    assert luma.std() == pytest.approx(expected_std, rel=0.05)
    assert np.abs(luma).max() <= math.sqrt(3) * expected_std * 1.1  # uniform: no tail beyond a = sqrt(3) sigma
    gaussian = rgb_to_ycbcr(corrupt(grey, "gaussian_noise", 3))[..., 0] * 255 - rgb_to_ycbcr(grey)[..., 0] * 255
    assert np.abs(gaussian).max() > math.sqrt(3) * expected_std * 1.3


def test_h264_video_encodes_the_frames_of_a_video_as_one_stream():
    clip = [natural_image(48, 40, seed=0)]
    for step in range(1, 6):  # a slowly moving scene: later frames are predicted from earlier ones
        clip.append(np.roll(clip[0], step, axis=1))
    assert [f.shape for f in corrupt_video(clip, "h264_video", 0)] == [f.shape for f in clip]
    qualities = []
    for severity in (1, 5):
        out = corrupt_video(clip, "h264_video", severity)
        assert len(out) == len(clip) and all(o.shape == c.shape and o.dtype == np.uint8 for o, c in zip(out, clip))
        qualities.append(np.mean([psnr(c, o) for c, o in zip(clip, out)]))
    assert qualities[0] > qualities[1]  # CRF 40 damages more than CRF 30
    single = [corrupt(frame, "h264", 5) for frame in clip]
    together = corrupt_video(clip, "h264_video", 5)
    # Predicted frames differ from key frames encoded one by one (inter-frame coding).
    assert any(not np.array_equal(a, b) for a, b in zip(single[1:], together[1:]))
    mixed = corrupt_video([natural_image(47, 63), natural_image(45, 61, seed=1)], "h264_video", 3)
    assert [m.shape for m in mixed] == [(47, 63, 3), (45, 61, 3)]  # per-frame sizes kept
    with pytest.raises(CorruptionError, match="use corrupt_video"):
        corrupt(IMAGE, "h264_video", 1)
    with pytest.raises(CorruptionError, match="use corrupt_video"):
        CorruptImage("h264_video", 1)
    with pytest.raises(CorruptionError, match="not a video corruption"):
        corrupt_video(clip, "h264", 1)


def test_h264_and_pixelation_keep_odd_sizes():
    odd = natural_image(47, 63)
    for name in ("h264", "pixelation", "jpeg"):
        assert corrupt(odd, name, 5).shape == odd.shape


def test_bad_input_names_the_problem():
    with pytest.raises(CorruptionError, match="unknown corruption 'fog'"):
        corrupt(IMAGE, "fog", 1)
    with pytest.raises(CorruptionError, match="severity 6"):
        corrupt(IMAGE, "jpeg", 6)
    with pytest.raises(CorruptionError, match=r"\(H, W, 3\) uint8"):
        corrupt(IMAGE.astype(np.float32), "jpeg", 1)
    with pytest.raises(CorruptionError, match="3 levels given"):
        corruption_parameter("jpeg", 1, {"jpeg": [90, 50, 10]})


def test_corrupt_image_transform_is_a_pil_round_trip():
    image = Image.fromarray(IMAGE)
    out = CorruptImage("pixelation", 4)(image)
    assert out.size == image.size and np.array_equal(np.asarray(out), corrupt(IMAGE, "pixelation", 4))


# --------------------------------------------------------------------------- evaluation


class BrightnessDetector(torch.nn.Module):
    """P(fake) grows with mean brightness: fakes are drawn bright, reals dark."""

    def forward(self, images, batch=None):
        logits = images.mean(dim=(1, 2, 3)) * 10.0
        return DetectorOutput(logits=logits, features=images.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("frames")
    rows = []
    for video in range(6):
        label = video % 2
        for frame in range(2):
            image = np.clip(natural_image(40, 40, seed=10 * video + frame).astype(int) + (50 if label else -50), 0, 255)
            path = root / f"v{video}_{frame}.png"
            Image.fromarray(image.astype(np.uint8)).save(path)
            rows.append({"file": str(path), "path": path.name, "label": label, "video_id": f"v{video}",
                         "type": "fake" if label else "real", "domain": "toy"})
    return pd.DataFrame(rows)


def test_evaluation_writes_curves_report_and_figures(frames, tmp_path):
    settings = RobustnessSettings(corruptions=("contrast", "saturation"), severities=(0, 1, 5), batch_size=5, device="cpu")
    metrics = evaluate_corruptions(BrightnessDetector(), {"toy": frames}, 32, "imagenet", settings, val_threshold=0.5)
    assert set(metrics["toy"]) == {"contrast", "saturation"}
    assert set(metrics["toy"]["contrast"]) == {"0", "1", "5"}
    assert metrics["toy"]["contrast"]["0"] == metrics["toy"]["saturation"]["0"]  # clean scored once, shared
    assert metrics["toy"]["contrast"]["0"]["frame"]["auc"] == 1.0
    # Scaling intensities keeps the brightness order (AUC 1) but lowers every score, so fakes
    # fall below the validation threshold: accuracy must drop at the strongest contrast level.
    assert metrics["toy"]["contrast"]["5"]["frame"]["auc"] == 1.0
    assert metrics["toy"]["contrast"]["5"]["frame"]["acc_val_thr"] < metrics["toy"]["contrast"]["0"]["frame"]["acc_val_thr"]
    assert metrics["toy"]["contrast"]["0"]["video"]["n"] == 6

    report = build_report(metrics, {"toy": frames}, settings, checkpoint="x.ckpt", run_dir=str(tmp_path))
    path = atomic_write_json(tmp_path / "robustness.json", report)
    loaded = json.loads(path.read_text())  # strict JSON
    assert loaded["corruptions"]["contrast"]["levels"]["5"] == 0.35
    assert loaded["test_sets"]["toy"] == {"frames": 12, "videos": 6}
    severities, values = curve(loaded, "toy", "contrast", "auc", "frame")
    assert severities == [0, 1, 5] and values == [1.0, 1.0, 1.0]
    figures = plot_robustness_report(loaded, tmp_path / "robustness")
    assert [f.name for f in figures] == ["toy_frame_auc.png"]
    with Image.open(figures[0]) as figure:
        assert figure.format == "PNG" and figure.size[0] > 300
    # Two reports overlaid (python -m engine.robustness compare ...): one figure per shared test set.
    assert main(["compare", f"inputs=[{path},{path}]", "labels=[A,B]", f"out_dir={tmp_path / 'compare'}"]) == 0
    assert [p.name for p in (tmp_path / "compare").iterdir()] == ["compare_toy_frame_auc.png"]
    assert main(["compare", f"inputs=[{path}]", "labels=[A,B]"]) == 2  # one label per input


def test_the_command_line_is_read_in_one_function(tmp_path):
    command = parse_command_line([f"ckpt={tmp_path}/checkpoints/last.ckpt", "corruptions=[jpeg]", "config.data.num_workers=0"])
    assert isinstance(command, EvaluateCommand) and command.run_dir == tmp_path.resolve()
    assert command.settings.corruptions == ("jpeg",) and command.config_overrides == ("data.num_workers=0",)
    compare = parse_command_line(["compare", "inputs=[a/robustness.json,b/robustness.json]"])
    assert isinstance(compare, CompareCommand) and compare.labels == ("a", "b") and compare.out_dir == Path(".")
    with pytest.raises(RobustnessError, match="key=value"):
        parse_command_line(["run_dir"])
    with pytest.raises(RobustnessError, match="give run_dir"):
        parse_command_line([])
    with pytest.raises(RobustnessError, match="compare takes"):
        parse_command_line(["compare", "labels=[A]"])


def test_video_corruption_is_scored_on_each_videos_frames_together(frames, tmp_path):
    settings = RobustnessSettings(corruptions=("h264_video", "uniform_noise"), severities=(0, 5), batch_size=5, device="cpu")
    metrics = evaluate_corruptions(BrightnessDetector(), {"toy": frames}, 32, "imagenet", settings)
    assert set(metrics["toy"]) == {"h264_video", "uniform_noise"}
    assert metrics["toy"]["h264_video"]["5"]["frame"]["n"] == len(frames)
    assert metrics["toy"]["h264_video"]["5"]["video"]["n"] == 6


def test_settings_reject_unknown_keys_and_corruptions():
    assert load_settings().corruptions == tuple(CORRUPTIONS)
    with pytest.raises(RobustnessError, match="unknown robustness setting"):
        load_settings({"severity": [1]})
    with pytest.raises(RobustnessError, match="unknown"):
        RobustnessSettings(corruptions=("fog",))
    with pytest.raises(RobustnessError, match="levels"):
        RobustnessSettings(levels={"jpeg": (90, 10)})


class FakeDataModule:
    """What evaluate_run needs of the datamodule: test sets with frames, image size, normalisation."""

    image_size = 64
    normalization = "imagenet"

    def __init__(self, frames: pd.DataFrame):
        self.test_sets = [SimpleNamespace(name="toy", frames=frames)]

    def setup(self, stage: str) -> None:
        pass


def test_evaluate_run_loads_the_runs_checkpoint(frames, tmp_path):
    """From a run directory: config from results.json, weights and threshold from the checkpoint."""
    from conftest import compose
    from hydra.utils import instantiate

    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "detector=resnet34"], tmp_path)
    model = instantiate(cfg.detector, _convert_="all")
    model.val_threshold.fill_(0.5)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "checkpoints" / "last.ckpt")
    block = {name: 0.5 for name in METRIC_NAMES}
    results = build_results(OmegaConf.to_container(cfg, resolve=True), {}, {"toy": {"frame": block, "video": block}}, None, 0.0)
    write_results(tmp_path, results)

    settings = RobustnessSettings(corruptions=("jpeg",), severities=(0, 3), batch_size=6, device="cpu")
    written = evaluate_run(tmp_path, settings, checkpoint="last", datamodule=FakeDataModule(frames))
    report = json.loads(written.read_text())
    assert report["checkpoint"].endswith("last.ckpt") and set(report["metrics"]["toy"]["jpeg"]) == {"0", "3"}
    assert (tmp_path / "plots" / "robustness" / "toy_frame_auc.png").is_file()
    # The loaded weights are the saved ones: same clean scores as the original model gives.
    original = evaluate_corruptions(model, {"toy": frames}, 64, "imagenet", settings, val_threshold=0.5)
    for key in ("auc", "eer_threshold", "acc_val_thr"):
        assert report["metrics"]["toy"]["jpeg"]["0"]["frame"][key] == pytest.approx(original["toy"]["jpeg"]["0"]["frame"][key])
    with pytest.raises(RobustnessError, match="does not exist"):
        evaluate_run(tmp_path, settings, checkpoint=str(tmp_path / "missing.ckpt"), datamodule=FakeDataModule(frames))
    # A training run's W&B logger (engine/pipeline.py passes its loggers) gets each figure; the command line passes none.
    from lightning.pytorch.loggers import WandbLogger

    class RecordingWandbLogger(WandbLogger):
        def __init__(self):
            self.images = {}

        def log_image(self, key, images, **kwargs):
            self.images[key] = images

    recorder = RecordingWandbLogger()
    evaluate_run(tmp_path, settings, checkpoint="last", datamodule=FakeDataModule(frames), loggers=[recorder])
    drawn = sorted((tmp_path / "plots" / "robustness").glob("*.png"))
    assert drawn and recorder.images == {f"plots/robustness/{path.stem}": [str(path)] for path in drawn}
