"""The embedded synthetic dataset: layout and labels, determinism, caching (also with two
processes at once), that each artifact family leaves the trace it is meant to leave, and (slow)
that a tiny CNN learns it in domain and transfers, more weakly, to a held-out domain."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamodules import synthetic
from datamodules import synthetic_artifacts as art
from datamodules.records import RECORD_COLUMNS, SPLITS, validate_records
from datamodules.synthetic import (
    ALL_DOMAINS,
    DOMAINS,
    GENERATOR_VERSION,
    SyntheticSpec,
    ensure_synthetic,
    plan_videos,
    synthetic_dir,
)
from datamodules.synthetic_faces import FramePose, render_face, sample_identity, sample_pose, sample_scene

REPO = Path(__file__).resolve().parent.parent
# Small enough to generate in about a second, yet every domain, type and split is present.
TINY = SyntheticSpec(image_size=32, frames_per_video=2, videos=(1, 1, 1))
TWO_DOMAINS = SyntheticSpec(image_size=32, frames_per_video=2, videos=(1, 1, 1), domains=("ffpp", "uniattack"))
EXPECTED_TYPES = {
    "ffpp": {"real", "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"},
    "diff": {"real", "T2I", "I2I", "FS", "FE"},
    "uniattack": {"live", "physical", "adversarial", "digital"},
}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("synthetic_tiny")
    records = ensure_synthetic(root, seed=0, spec=TINY, progress=False)
    return synthetic_dir(root, 0, TINY), records


def _file_hashes(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): hashlib.sha1(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# -- spec and cache key ---------------------------------------------------------------------------
def test_cache_key_follows_seed_spec_and_version(tmp_path):
    base = synthetic_dir(tmp_path, 0, SyntheticSpec())
    assert base == synthetic_dir(tmp_path, 0, SyntheticSpec())  # equal specs share a cache
    assert f"v{GENERATOR_VERSION}" in base.name
    variants = [
        synthetic_dir(tmp_path, 1, SyntheticSpec()),
        synthetic_dir(tmp_path, 0, SyntheticSpec(image_size=96)),
        synthetic_dir(tmp_path, 0, SyntheticSpec(frames_per_video=3)),
        synthetic_dir(tmp_path, 0, SyntheticSpec(videos=(4, 2, 6))),
        synthetic_dir(tmp_path, 0, SyntheticSpec(domains=("ffpp",))),
        synthetic_dir(tmp_path, 0, SyntheticSpec(artifact_strength=0.5)),
    ]
    assert len({base, *variants}) == len(variants) + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domains": ("ffpp", "nope")}, "nope"),
        ({"image_size": 16}, "16"),
        ({"videos": (2, 0, 1)}, "(2, 0, 1)"),
        ({"frames_per_video": 0}, "frames_per_video"),
        ({"artifact_strength": 0.0}, "artifact_strength"),
    ],
)
def test_spec_rejects_bad_values_and_names_them(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SyntheticSpec(**kwargs)


def test_default_plan_is_small_balanced_and_named_like_the_real_datasets():
    spec = SyntheticSpec()
    plans = plan_videos(0, spec)
    images = len(plans) * spec.frames_per_video
    assert 2000 <= images <= 5000, f"demo size drifted to {images} images"
    assert set(ALL_DOMAINS) == {"ffpp", "celebdf", "dfdc", "diff", "wilddeepfake", "uniattack", "jfsfdb"}
    types = {d: {p.type for p in plans if p.domain == d} for d in ALL_DOMAINS}
    for domain, expected in EXPECTED_TYPES.items():
        assert types[domain] == expected
    assert {"print", "replay"} <= types["jfsfdb"] and len(types["jfsfdb"] - {"real", "print", "replay"}) >= 1
    assert len({p.video_id for p in plans}) == len(plans)
    # Some families are shared across domains, none is everywhere: transfer possible, not free.
    families = {d: {r.family for t, rs in DOMAINS[d].fake_types.items() for r in rs} for d in ALL_DOMAINS}
    assert families["ffpp"] & families["wilddeepfake"] and families["ffpp"] & families["diff"]
    assert families["diff"] - set().union(*(families[d] for d in ("ffpp", "celebdf", "dfdc")))
    # Each fake is made from a genuine video of its own domain and split (as FF++ fakes are).
    genuine = {(p.domain, p.split, p.number): p for p in plans if p.recipe is None}
    for plan in plans:
        if plan.recipe is not None:
            original = genuine[(plan.domain, plan.split, plan.original)]
            assert original.identity == plan.identity and original.timeline_key == plan.timeline_key


# -- the generated records ------------------------------------------------------------------------
def test_records_are_valid_with_both_labels_in_every_domain_and_split(tiny_dataset):
    directory, records = tiny_dataset
    validate_records(records, "tiny synthetic")  # raises on any contract breach
    assert set(RECORD_COLUMNS) <= set(records.columns)
    assert sorted(records["domain"].unique()) == sorted(ALL_DOMAINS)
    for (domain, split), group in records.groupby(["domain", "split"]):
        assert set(group["label"]) == {0, 1}, f"{domain}/{split} lacks a class"
        genuine = group[group["label"] == 0]
        assert set(genuine["type"]) == {DOMAINS[domain].genuine_type}
        assert len(genuine) == len(group) - len(genuine), f"{domain}/{split} is not balanced"
    assert set(records["split"]) == set(SPLITS)
    assert records["video_id"].str.match(r"^synthetic/[a-z]+/[\w-]+/(train|val|test)/\d{4}$").all()
    assert (records.groupby("video_id").size() == TINY.frames_per_video).all()
    assert records["video_id"].nunique() * TINY.frames_per_video == len(records)
    assert all((directory / path).is_file() for path in records["path"])
    assert (directory / "index.csv").is_file()


def test_identities_are_disjoint_across_splits(tiny_dataset):
    _, records = tiny_dataset
    for domain, group in records.groupby("domain"):
        people = {
            split: set(part["identity"]) | set(part["donor_identity"].replace("", np.nan).dropna())
            for split, part in group.groupby("split")
        }
        for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
            assert not people[a] & people[b], f"{domain}: identities shared by {a} and {b}"


def test_frames_of_a_video_move_slightly_and_videos_differ(tiny_dataset):
    directory, records = tiny_dataset
    from PIL import Image

    def pixels(path: str) -> np.ndarray:
        return np.asarray(Image.open(directory / path), dtype=np.float32)

    genuine = records[(records["label"] == 0) & (records["domain"] == "ffpp") & (records["split"] == "train")]
    videos = [g.sort_values("frame_index")["path"].tolist() for _, g in genuine.groupby("video_id")][:3]
    within = [np.abs(pixels(v[0]) - pixels(v[1])).mean() for v in videos]
    across = [np.abs(pixels(videos[i][0]) - pixels(videos[i + 1][0])).mean() for i in range(len(videos) - 1)]
    assert all(w > 0 for w in within), "frames of a video should not be identical"
    assert max(within) < min(across), f"frame-to-frame change {within} is not smaller than video-to-video {across}"


# -- determinism and caching ----------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first = _file_hashes_after(tmp_path / "a", seed=0)
    second = _file_hashes_after(tmp_path / "b", seed=0)
    other = _file_hashes_after(tmp_path / "c", seed=1)
    assert first == second
    pngs = [name for name in first if name.endswith(".png")]
    assert len(pngs) > 20
    changed = sum(first[name] != other.get(name) for name in pngs)
    assert changed == len(pngs), f"only {changed}/{len(pngs)} images change with the seed"


def test_worker_processes_draw_the_same_files_and_index_as_one_process(tmp_path):
    """generate_synthetic draws videos in worker processes (as many as the CPUs the process may use):
    the same bytes and the same index, in plan order, as one process."""
    one = synthetic.generate_synthetic(tmp_path / "one", 0, TWO_DOMAINS, progress=False, workers=1)
    three = synthetic.generate_synthetic(tmp_path / "three", 0, TWO_DOMAINS, progress=False, workers=3)
    pd.testing.assert_frame_equal(one, three)
    assert _file_hashes(tmp_path / "one") == _file_hashes(tmp_path / "three") and len(_file_hashes(tmp_path / "one")) > 20
    with pytest.raises(ValueError, match="workers=0"):
        synthetic.generate_synthetic(tmp_path / "none", 0, TWO_DOMAINS, progress=False, workers=0)


def _file_hashes_after(root: Path, seed: int) -> dict[str, str]:
    ensure_synthetic(root, seed=seed, spec=TWO_DOMAINS, progress=False)
    return _file_hashes(synthetic_dir(root, seed, TWO_DOMAINS))


def test_a_complete_cache_is_loaded_not_regenerated(tmp_path, monkeypatch):
    records = ensure_synthetic(tmp_path, seed=0, spec=TWO_DOMAINS, progress=False)
    index = synthetic_dir(tmp_path, 0, TWO_DOMAINS) / "index.csv"
    stamp = index.stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache was regenerated")

    monkeypatch.setattr(synthetic, "generate_synthetic", must_not_run)
    again = ensure_synthetic(tmp_path, seed=0, spec=TWO_DOMAINS, progress=False)
    pd.testing.assert_frame_equal(records, again)
    assert index.stat().st_mtime_ns == stamp
    # the index is read once a process while the file stays the same: each caller gets its own copy, and a
    # rewritten file is read again
    again.loc[0, "label"] = 1 - again.loc[0, "label"]
    pd.testing.assert_frame_equal(records, ensure_synthetic(tmp_path, seed=0, spec=TWO_DOMAINS, progress=False))
    pd.read_csv(index, dtype=str, keep_default_na=False).iloc[:5].to_csv(index, index=False)
    assert len(ensure_synthetic(tmp_path, seed=0, spec=TWO_DOMAINS, progress=False)) == 5


def test_failed_generation_leaves_no_partial_cache(tmp_path, monkeypatch):
    def broken(out_dir, *args, **kwargs):
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "half-written.png").write_bytes(b"")
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "generate_synthetic", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_synthetic(tmp_path, seed=0, spec=TWO_DOMAINS, progress=False)
    leftovers = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [], f"partial cache left behind: {leftovers}"


CONCURRENT_CALLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from datamodules import synthetic

    root, counter = Path(sys.argv[1]), Path(sys.argv[2])
    original = synthetic.generate_synthetic

    def counted(*args, **kwargs):
        with open(counter, "a") as handle:
            handle.write("generated\\n")
        time.sleep(0.5)  # keep generating while the other process arrives
        return original(*args, **kwargs)

    synthetic.generate_synthetic = counted
    spec = synthetic.SyntheticSpec(image_size=32, frames_per_video=2, videos=(1, 1, 1), domains=("ffpp", "uniattack"))
    records = synthetic.ensure_synthetic(root, seed=0, spec=spec, progress=False)
    print(len(records), records["path"].iloc[-1])
    """
)


def test_two_processes_generate_once_and_read_the_same_cache(tmp_path):
    counter = tmp_path / "generations.txt"
    root = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CONCURRENT_CALLER, str(root), str(counter)]
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].strip()
    assert counter.read_text().count("generated") == 1
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == [], "temporary directories left"
    assert (synthetic_dir(root, 0, TWO_DOMAINS) / "index.csv").is_file()


# -- artifact families leave their traces ---------------------------------------------------------
@pytest.fixture(scope="module")
def faces():
    """Two people in the same pose and scene (64 px), the raw material of every artifact."""
    rng = np.random.default_rng(7)
    palette = ((0.3, 0.4, 0.5), (0.6, 0.55, 0.5))
    first, second = sample_identity(rng), sample_identity(rng)
    scene = sample_scene(rng, palette, (0.1, 0.2))
    pose = FramePose(center_x=0.5, center_y=0.5, face_width=0.46, roll_degrees=4.0, yaw=0.1, mouth_open=0.2, eyes_open=1.0)
    return render_face(first, scene, pose, 64), render_face(second, scene, pose, 64)


def _spectrum(image: np.ndarray) -> np.ndarray:
    grey = image.mean(axis=2)
    return np.abs(np.fft.fft2(grey - grey.mean()))


def _annulus_energy(spectrum: np.ndarray, radius: float, width: float = 1.0) -> float:
    size = spectrum.shape[0]
    freq = np.fft.fftfreq(size) * size
    distance = np.hypot(*np.meshgrid(freq, freq))
    return float((spectrum[np.abs(distance - radius) <= width] ** 2).sum())


def _boundary_step(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean colour step across a mask's boundary: the image gradient projected on the mask's
    normal, averaged over the band around the boundary, summed over channels. Skin texture
    has no preferred direction and averages out; a pasted region's edge does not."""
    normal_rows, normal_cols = np.gradient(art.blur(mask, 1.0))
    norm = np.hypot(normal_rows, normal_cols)
    band = norm > 0.25 * norm.max()
    steps = []
    for channel in range(3):
        rows, cols = np.gradient(image[..., channel])
        steps.append(((rows * normal_rows + cols * normal_cols)[band] / norm[band]).mean())
    return float(np.abs(steps).sum())


def test_rendered_masks_nest_and_lie_on_the_face(faces):
    face, _ = faces
    assert face.image.shape == (64, 64, 3) and face.image.dtype == np.float32
    assert 0.0 <= face.image.min() and face.image.max() <= 1.0
    for name in ("inner", "lower", "mouth", "eyes"):
        mask = face.masks[name]
        assert mask.sum() > 10, f"mask {name} is empty"
        assert (mask <= face.masks["face"] + 1e-2).all(), f"mask {name} leaves the face"
    assert face.masks["inner"].sum() > 2 * face.masks["mouth"].sum()


@pytest.mark.parametrize("period", [2, 4])
def test_gan_upsampling_adds_spectral_peaks_at_the_period(faces, period):
    face, _ = faces
    pattern = art.upsampling_pattern(period, np.random.default_rng(0))
    fake = art.gan_upsampling(face.image, face.masks["inner"], period, strength=0.1, pattern=pattern)
    # A periodic imprint of period p lives on the grid of harmonics of 64 / p. Off the axes
    # (both indices non-zero) a clean face has almost no energy there: edges are mostly
    # horizontal or vertical, and nearest/bilinear upsampling alone has zeros at the harmonics.
    step = 64 // period
    harmonics = [(i * step, j * step) for i in range(1, period) for j in range(1, period)]
    clean_energy = sum(_spectrum(face.image)[b] ** 2 for b in harmonics)
    fake_energy = sum(_spectrum(fake)[b] ** 2 for b in harmonics)
    assert fake_energy > 5 * clean_energy, (fake_energy, clean_energy)
    outside = face.masks["face"] < 1e-3
    assert np.abs(fake - face.image)[outside].max() < 0.02  # the background is left alone


def test_diffusion_smoothing_removes_high_frequencies_in_the_region_only(faces):
    face, _ = faces
    fake = art.diffusion_smoothing(face.image, face.masks["face"], sigma=1.6, edge_threshold=0.06)
    core = art.blur(face.masks["face"], 1.0) > 0.99

    def typical_detail(image: np.ndarray) -> float:
        # The median ignores the few strong feature edges (kept on purpose) and measures texture.
        return float(np.median(np.abs(image - art.blur(image, 1.0)).max(axis=2)[core]))

    assert typical_detail(fake) < 0.5 * typical_detail(face.image)
    far = art.blur(face.masks["face"], 3.0) < 1e-4
    assert np.allclose(fake[far], face.image[far], atol=1e-3)


def test_print_attack_adds_halftone_period_and_loses_gamut(faces):
    face, _ = faces
    period = 3.5
    printed = art.print_attack(face.image, period, 0.4, halftone_mix=0.3, saturation=0.7, contrast=0.8, paper_tint=(1.0, 0.98, 0.92))
    radius = 64 / period * np.sqrt(2)  # the dot grid's diagonal harmonic (product of two cosines)
    clean = _annulus_energy(_spectrum(face.image), radius)
    dotted = _annulus_energy(_spectrum(printed), radius)
    assert dotted > 5 * clean, (dotted, clean)
    saturation = lambda image: float((image.max(axis=2) - image.min(axis=2)).mean())  # noqa: E731
    assert saturation(printed) < saturation(face.image)


def test_replay_attack_adds_moire_bands_and_glare(faces):
    face, _ = faces
    args = dict(moire_amplitude=0.1, moire_frequency=0.35, moire_angle=0.3, moire_beat=0.05, glare_radius=0.15)
    banded = art.replay_attack(face.image, glare_center=(0.3, 0.3), glare_strength=0.0, screen_gain=(1, 1, 1), **args)
    pattern = art.moire_pattern((64, 64), 0.35, 0.3, 0.05)
    ratio = (banded / np.clip(face.image, 1e-3, None) - 1).mean(axis=2)
    unclipped = (face.image.max(axis=2) < 0.85) & (face.image.min(axis=2) > 0.05)
    correlation = np.corrcoef(ratio[unclipped], pattern[unclipped])[0, 1]
    assert correlation > 0.9, correlation
    glared = art.replay_attack(face.image, glare_center=(0.3, 0.3), glare_strength=0.4, screen_gain=(1, 1, 1), **args)
    spot = (slice(15, 24), slice(15, 24))
    assert (glared[spot] - banded[spot]).mean() > 0.1


def test_face_swap_leaves_a_gradient_step_on_the_mask_boundary(faces):
    face, donor = faces
    fake = art.face_swap(face.image, donor.image, face.masks["inner"], feather_sigma=0.5, colour_gain=(1.15, 1.05, 0.95))
    step_fake, step_clean = _boundary_step(fake, face.masks["inner"]), _boundary_step(face.image, face.masks["inner"])
    assert step_fake > 2.5 * step_clean, (step_fake, step_clean)
    far = art.blur(face.masks["inner"], 3.0) < 1e-4
    assert np.allclose(fake[far], face.image[far], atol=1e-3)
    inside = art.feathered_mask(face.masks["inner"], 0.5) > 0.99
    assert np.abs(fake - donor.image * np.array([1.15, 1.05, 0.95]))[inside].mean() < 0.02


def test_self_blend_changes_only_the_region_and_marks_its_boundary(faces):
    face, _ = faces
    mask = face.masks["inner"]
    fake = art.self_blend(face.image, mask, scale=1.06, shift=(1.0, -1.0), colour_gain=(1.1, 1.0, 0.92), feather_sigma=0.8)
    far = art.blur(mask, 3.0) < 1e-4
    inside = art.feathered_mask(mask, 0.8) > 0.99
    assert np.allclose(fake[far], face.image[far], atol=1e-3)
    assert np.abs(fake - face.image)[inside].mean() > 0.03
    assert _boundary_step(fake, mask) > 2.5 * _boundary_step(face.image, mask)


def test_adversarial_noise_is_small_and_everywhere(faces):
    face, _ = faces
    epsilon = 0.03
    pattern = art.adversarial_pattern((64, 64), np.random.default_rng(1))
    attacked = art.adversarial_noise(face.image, epsilon, pattern)
    change = np.abs(attacked - face.image)
    assert change.max() <= epsilon + 1e-6
    assert change.mean() > 0.8 * epsilon  # almost no pixel is left alone (only clipping at 0 / 1)
    assert 0.3 < (pattern > 0).mean() < 0.7


def test_artifacts_reject_mismatched_masks(faces):
    face, donor = faces
    with pytest.raises(ValueError, match=r"mask shape \(32, 32\)"):
        art.face_swap(face.image, donor.image, np.zeros((32, 32), np.float32), 1.0, (1, 1, 1))


def test_render_face_is_a_pure_function_of_its_inputs():
    rng = np.random.default_rng(3)
    identity, scene = sample_identity(rng), sample_scene(rng, ((0.5, 0.5, 0.5),), (0.1, 0.2))
    pose = sample_pose(rng, (0.4, 0.5), 5.0)
    first, second = render_face(identity, scene, pose, 48), render_face(identity, scene, pose, 48)
    assert np.array_equal(first.image, second.image)
    low = render_face(identity, scene, pose, 48, render_size=24)
    assert low.image.shape == (48, 48, 3)
    # Drawn at half resolution: less fine detail than the full-resolution frame.
    detail = lambda image: float(((image - art.blur(image, 1.0)) ** 2).mean())  # noqa: E731
    assert detail(low.image) < detail(first.image)


# -- learnability ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_tiny_cnn_learns_in_domain_and_transfers_weaker_to_a_held_out_domain(synthetic_root):
    """Train ~1 min on CPU on the ffpp + celebdf + dfdc train splits of the default demo data."""
    import torch

    torch.manual_seed(0)
    # Convolutions this small run faster on one thread than split across busy cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_domain, held_out = _train_and_score_tiny_cnn(synthetic_root)
    finally:
        torch.set_num_threads(threads)
    print(f"in-domain AUC {in_domain:.3f}; held-out AUC {held_out}")
    assert in_domain >= 0.9
    assert held_out["wilddeepfake"] > 0.6
    assert held_out["wilddeepfake"] < in_domain - 0.05, "the held-out domain should be clearly harder"


def _train_and_score_tiny_cnn(root: Path) -> tuple[float, dict[str, float]]:
    import torch
    from PIL import Image
    from sklearn.metrics import roc_auc_score
    from torch import nn

    records = ensure_synthetic(root, seed=0, progress=False)  # the default demo data, as scale=demo uses
    directory = synthetic_dir(root, 0)

    def tensors(table: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        images = np.stack([np.asarray(Image.open(directory / p), dtype=np.float32) / 255 for p in table["path"]])
        return (torch.from_numpy(images).permute(0, 3, 1, 2) - 0.5) / 0.25, torch.tensor(table["label"].to_numpy(), dtype=torch.float32)

    sources = ["ffpp", "celebdf", "dfdc"]
    x_train, y_train = tensors(records[records["domain"].isin(sources) & (records["split"] == "train")])

    def block(inputs: int, outputs: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU())

    class MeanMaxPool(nn.Module):  # max pooling finds a local artifact anywhere in the frame
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)

    model = nn.Sequential(block(3, 16, 1), block(16, 32, 2), block(32, 32, 1), block(32, 64, 2), block(64, 64, 2), MeanMaxPool(), nn.Linear(128, 1))
    epochs, batch = 20, 32
    optimiser = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=epochs * -(-len(x_train) // batch))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), batch):
            index = order[start : start + batch]
            images = x_train[index]
            images = torch.where(torch.rand(len(index))[:, None, None, None] < 0.5, images.flip(3), images)
            padded = nn.functional.pad(images, (4, 4, 4, 4), mode="reflect")
            dy, dx = torch.randint(0, 9, (2,)).tolist()
            images = padded[:, :, dy : dy + 64, dx : dx + 64]
            loss = nn.functional.binary_cross_entropy_with_logits(model(images).squeeze(1), y_train[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()

    model.eval()

    def auc(table: pd.DataFrame) -> float:
        images, labels = tensors(table)
        with torch.no_grad():
            scores = model(images).squeeze(1).numpy()
        return float(roc_auc_score(labels.numpy(), scores))

    test = records[records["split"] == "test"]
    in_domain = auc(test[test["domain"].isin(sources)])
    held_out = {domain: auc(test[test["domain"] == domain]) for domain in ("wilddeepfake", "diff")}
    return in_domain, held_out
