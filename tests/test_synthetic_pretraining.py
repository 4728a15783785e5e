"""``detector.pretrained: synthetic``: the tiny CLIP the suite pretrains on embedded domains. It refuses
what would be wrong (a paper-size model, real data, a protocol that uses a pretraining domain), it
learns its captions, it is cached, and the detector loads exactly those weights."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import compose
from omegaconf import OmegaConf

from detectors.backbones.clip import build_clip
from engine.synthetic_pretraining import (
    FAMILY_CAPTIONS,
    PretrainingRecipe,
    corpus_records,
    corpus_spec,
    load_or_pretrain,
    pretraining_key,
    protocol_domains,
    recipe_from_mapping,
    resolve_synthetic_weights,
)

QUICK = PretrainingRecipe(domains=("jfsfdb",), epochs=10, warmup_steps=10)  # 13 s at 32 px on 1 thread


def demo_config(tmp_path: Path, synthetic_root: Path, *overrides: str):
    return compose(
        ["experiment=gmdf_multidomain", "scale=demo", f"paths.cache_dir={tmp_path / 'cache'}", *overrides],
        tmp_path / "run", synthetic_root,
    )


def test_other_pretrained_values_pass_through(tmp_path, synthetic_root):
    cfg = demo_config(tmp_path, synthetic_root, "demo_pretrained=null")
    assert resolve_synthetic_weights(cfg) is cfg
    assert cfg.detector.pretrained is None


def test_gmdf_experiments_use_the_synthetic_clip_at_demo_scale_only(tmp_path, synthetic_root):
    assert demo_config(tmp_path, synthetic_root).detector.pretrained == "synthetic"
    paper = compose(["experiment=gmdf_multidomain"], tmp_path / "paper")
    assert paper.detector.pretrained == "openai"
    baseline = compose(["experiment=baseline_multidomain", "scale=demo"], tmp_path / "baseline")
    assert baseline.detector.pretrained is None


def test_a_protocol_using_a_pretraining_domain_is_refused(tmp_path, synthetic_root):
    cfg = demo_config(tmp_path, synthetic_root, "protocol=uniattack_p1")
    with pytest.raises(ValueError, match=r"uniattack_p1.*pretrained on"):
        resolve_synthetic_weights(cfg)
    assert not (tmp_path / "cache").exists()  # refused before anything was trained


def test_the_protocol_domains_cover_train_val_and_test(tmp_path, synthetic_root):
    used = protocol_domains(demo_config(tmp_path, synthetic_root))
    assert used == {"ffpp_c23": "ffpp", "celebdf_v2": "celebdf", "diff": "diff", "wilddeepfake": "wilddeepfake", "dfdc": "dfdc"}


@pytest.mark.parametrize(
    ("override", "message"),
    [("detector.size=paper", "detector.size=tiny"), ("detector=resnet34", "open_clip model_name"), ("data.source=prepared", "data.source=synthetic")],
)
def test_wrong_models_and_data_are_refused(tmp_path, synthetic_root, override, message):
    cfg = demo_config(tmp_path, synthetic_root, override)
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.detector.pretrained = "synthetic"
    with pytest.raises(ValueError, match=message):
        resolve_synthetic_weights(cfg)


def test_an_unresolved_synthetic_tag_is_an_error_not_a_random_model():
    with pytest.raises(ValueError, match="resolve_synthetic_weights"):
        build_clip("ViT-B-16", pretrained="synthetic", size="tiny", image_size=64)


def test_recipe_keys_are_checked():
    assert recipe_from_mapping({"domains": ["jfsfdb"], "epochs": 2, "cache_dir": "x"}) == PretrainingRecipe(domains=("jfsfdb",), epochs=2)
    with pytest.raises(ValueError, match="unknown key"):
        recipe_from_mapping({"epoch": 2})
    with pytest.raises(ValueError, match="epochs must be a whole number >= 1, got 0"):
        PretrainingRecipe(epochs=0)
    for bad in (-1, 2.5, "4"):
        with pytest.raises(ValueError, match=rf"pad_crop must be a whole number >= 0, got {bad!r}"):
            PretrainingRecipe(pad_crop=bad)
    # an augmentation set is checked op by op when the recipe is made, before any image is read
    with pytest.raises(ValueError, match=r"synthetic_pretraining.augment: augment: unknown op 'blurr'"):
        PretrainingRecipe(augment={"blurr": 0.5})
    with pytest.raises(ValueError, match=r"synthetic_pretraining.augment must be an augmentation set .* got 'standard'"):
        PretrainingRecipe(augment="standard")


def test_an_augmentation_set_of_conf_augment_reaches_the_recipe_and_its_key(tmp_path):
    """``+augment@synthetic_pretraining.augment=<set>`` puts a set of conf/augment into the recipe; the key covers
    the set's ops, and a recipe without one keeps the key it had before the knob existed."""
    plain = compose(["experiment=moa_ffpp", "scale=demo"], tmp_path)
    assert plain.synthetic_pretraining.augment is None
    cfg = compose(["experiment=moa_ffpp", "scale=demo", "+augment@synthetic_pretraining.augment=standard"], tmp_path)
    recipe = recipe_from_mapping(OmegaConf.to_container(cfg.synthetic_pretraining, resolve=True))
    assert recipe.augment["jpeg"] == {"p": 0.5, "quality": [40, 100]} and cfg.data.augment.name == "flip_crop"  # the training set stays

    def key(recipe):
        return pretraining_key("synthetic-v5", "ViT-B-16", 64, "clip", recipe, 4, numerics="cpu/AVX2/2 threads")

    base = recipe_from_mapping(OmegaConf.to_container(plain.synthetic_pretraining, resolve=True))
    assert key(recipe) != key(base) == key(replace(recipe, augment=None))
    assert key(replace(recipe, augment={**recipe.augment, "jpeg": {"p": 0.5, "quality": [60, 100]}})) != key(recipe)


def test_pad_crop_shifts_each_image_by_whole_pixels_and_keeps_the_cache_keys_without_it():
    from engine.synthetic_pretraining import random_shift

    batch = torch.arange(6 * 3 * 8 * 8, dtype=torch.float32).reshape(6, 3, 8, 8)
    generator = torch.Generator().manual_seed(0)
    assert random_shift(batch, 0, generator) is batch
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())  # nothing drawn at 0
    shifted = random_shift(batch, 2, generator)
    top, left = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2), mode="reflect")
    for n in range(6):  # each image its own offset into its reflect-padded self, the size kept
        assert torch.equal(shifted[n], padded[n, :, top[n] : top[n] + 8, left[n] : left[n] + 8])
    assert len(set(zip(top.tolist(), left.tolist()))) > 1
    with pytest.raises(ValueError, match=r"pad_crop=8 must be smaller than the 8 x 8 images"):
        random_shift(batch, 8, generator)
    # the key of a recipe without shifts is the key it had before the knob existed (cached weights stay valid)
    key = pretraining_key("synthetic-v5", "ViT-B-16", 64, "clip", PretrainingRecipe(), 4, numerics="cpu/AVX2/2 threads")
    assert key == "cf3ccbab7d15dd97"  # computed before pad_crop was added
    assert pretraining_key("synthetic-v5", "ViT-B-16", 64, "clip", PretrainingRecipe(pad_crop=4), 4, numerics="cpu/AVX2/2 threads") != key


def test_a_shift_the_images_cannot_take_is_refused_before_the_corpus_is_read(tmp_path, monkeypatch):
    from engine import synthetic_pretraining

    def unread(*args):
        raise AssertionError("the corpus was read")

    monkeypatch.setattr(synthetic_pretraining, "corpus_records", unread)
    with pytest.raises(ValueError, match=r"pad_crop=64 must be smaller than the 64 x 64 images"):
        load_or_pretrain(tmp_path, tmp_path / "synthetic", 0, None, "ViT-B-16", 64, "clip", PretrainingRecipe(pad_crop=64))
    assert list(tmp_path.iterdir()) == []  # no cache folder, no lock


def test_the_corpus_is_the_training_split_of_the_named_domains_with_captions(synthetic_root):
    corpus, _ = corpus_records(synthetic_root, 0, None, ("uniattack", "jfsfdb"))
    assert set(corpus["domain"]) == {"uniattack", "jfsfdb"} and set(corpus["split"]) == {"train"}
    assert corpus["caption"].isin(list(FAMILY_CAPTIONS.values())).all()
    assert (corpus["caption"] == FAMILY_CAPTIONS["genuine"]).mean() == pytest.approx(0.5)  # balanced, as the data
    assert all(Path(path).is_file() for path in corpus["path"].head(5))
    with pytest.raises(ValueError, match="not embedded domains"):
        corpus_records(synthetic_root, 0, None, ("imagenet",))


def test_videos_draws_a_larger_corpus_of_the_same_domains_apart_and_keeps_the_keys_without_it(tmp_path):
    """``synthetic_pretraining.videos`` = N: the pretraining domains drawn apart (the run's image size and frames)
    with N training videos per fake type, more videos and people than the run's data; null reads the run's data."""
    from datamodules.synthetic import DOMAINS, SyntheticSpec

    spec = SyntheticSpec(image_size=32, frames_per_video=2, videos=(1, 1, 1))
    run_data, run_name = corpus_records(tmp_path, 0, spec, ("jfsfdb",))
    drawn, drawn_name = corpus_records(tmp_path, 0, spec, ("jfsfdb",), videos=3)
    fakes = len(DOMAINS["jfsfdb"].fake_types)
    assert len(run_data) == 2 * fakes * 1 * 2 and len(drawn) == 2 * fakes * 3 * 2  # real and fake videos, 2 frames each
    assert set(drawn["domain"]) == {"jfsfdb"} and set(drawn["split"]) == {"train"} and drawn_name != run_name
    assert drawn["identity"].nunique() > run_data["identity"].nunique()
    assert corpus_spec(spec, ("uniattack", "jfsfdb"), 3) == SyntheticSpec(image_size=32, frames_per_video=2, videos=(3, 1, 1),
                                                                           domains=("uniattack", "jfsfdb"))
    assert corpus_spec(spec, ("jfsfdb", "uniattack"), 3) == corpus_spec(spec, ("uniattack", "jfsfdb"), 3)  # one order, one folder
    assert corpus_spec(spec, ("jfsfdb",), None) is spec
    # a domain the data does not hold is named before anything is drawn
    for videos in (None, 3):
        with pytest.raises(ValueError, match=r"synthetic_pretraining.domains: \['imagenet'\] are not embedded domains"):
            corpus_records(tmp_path / "other", 0, spec, ("imagenet",), videos=videos)
    assert not (tmp_path / "other").exists()
    for bad in (0, -2, 2.5, True, "48"):
        with pytest.raises(ValueError, match=rf"videos must be null or a whole number >= 1, got {bad!r}"):
            PretrainingRecipe(videos=bad)

    def key(recipe):
        return pretraining_key("synthetic-v5", "ViT-B-16", 64, "clip", recipe, 4, numerics="cpu/AVX2/2 threads")

    assert key(PretrainingRecipe(videos=None)) == "cf3ccbab7d15dd97"  # computed before the knob existed
    assert key(PretrainingRecipe(videos=48)) != key(PretrainingRecipe(videos=32)) != key(PretrainingRecipe())


def test_the_key_changes_with_the_recipe_the_model_and_the_thread_count():
    def key(*args, numerics="cpu/AVX2/2 threads"):
        return pretraining_key(*args, numerics=numerics)

    base = key("data", "ViT-B-16", 64, "clip", QUICK)
    assert base != key("data", "ViT-B-16", 64, "clip", replace(QUICK, epochs=4))
    assert base != key("data", "ViT-B-16", 96, "clip", QUICK)
    assert base != key("other-data", "ViT-B-16", 64, "clip", QUICK)
    # the patch of the tiny ViT: None is the default 8, 4 is another model
    assert base == key("data", "ViT-B-16", 64, "clip", QUICK, 8)
    assert base != key("data", "ViT-B-16", 64, "clip", QUICK, 4)
    # weights trained at another intra-op thread count differ (common/numerics.py)
    assert base != key("data", "ViT-B-16", 64, "clip", QUICK, numerics="cpu/AVX2/1 threads")
    assert base != key("data", "ViT-B-16", 64, "clip", QUICK, numerics="cpu/AVX512/2 threads")  # other kernels


def untrained_clip(model_name: str, image_size: int, images: torch.Tensor, patch_size: int | None = None):
    """What ``pretrain_tiny_clip`` returns (the tower and its statistics), without training: for tests that
    replace it to see what it is asked to train."""
    epoch = {"loss": 1.0, "accuracy": 0.5}
    stats = {"images": len(images), "seconds": 0.0, "first_epoch": epoch, "last_epoch": epoch, "prior_loss": 1.0, "prior_accuracy": 0.5}
    return build_clip(model_name, size="tiny", image_size=image_size, tiny_patch_size=patch_size), stats


def test_the_weights_are_cached_per_thread_count(tmp_path, synthetic_root, monkeypatch):
    """A run at 2 threads never starts from weights pretrained at 1 (they differ in every bit that a
    reduction touches, and so would the run); each file says the numerics it was trained with."""
    import json

    from engine import synthetic_pretraining

    trained = []

    def quick(model_name, image_size, images, caption_ids, captions, recipe, patch_size=None, normalization=None):
        trained.append(torch.get_num_threads())
        return untrained_clip(model_name, image_size, images, patch_size)

    monkeypatch.setattr(synthetic_pretraining, "pretrain_tiny_clip", quick)
    threads = torch.get_num_threads()
    paths = {}
    try:
        for count in (1, 2, 1):
            torch.set_num_threads(count)
            paths.setdefault(count, set()).add(load_or_pretrain(tmp_path, synthetic_root, 0, None, "ViT-B-16", 64, "clip", QUICK))
    finally:
        torch.set_num_threads(threads)
    assert trained == [1, 2]  # the third call read the 1-thread file
    assert len(paths[1]) == 1 and paths[1] != paths[2]
    for count, (path,) in paths.items():
        assert json.loads(path.with_suffix(".json").read_text())["numerics"].endswith(f"/{count} threads")


def test_a_fast_dev_run_pretrains_one_epoch_on_a_few_images_cached_apart(tmp_path, synthetic_root, monkeypatch, caplog):
    """``trainer.fast_dev_run`` (debug=fast_dev_run) only checks that the code runs: its tower is pretrained for one
    epoch on QUICK_IMAGES images, named in the log and cached under another key than the recipe's."""
    import json
    import logging

    from engine import synthetic_pretraining

    with caplog.at_level(logging.WARNING, logger="engine.synthetic_pretraining"):
        quick = Path(resolve_synthetic_weights(demo_config(tmp_path, synthetic_root, "+trainer.fast_dev_run=true",
                                                           "demo_clip_patch_size=8")).detector.pretrained)
    record = json.loads(quick.with_suffix(".json").read_text())
    assert record["quick"] is True and record["recipe"]["epochs"] == 1
    assert record["stats"]["images"] == synthetic_pretraining.QUICK_IMAGES
    assert "fast_dev_run: the tiny CLIP is pretrained for 1 epoch on 64 of its" in caplog.text
    # with a corpus drawn apart (videos) the quick tower still takes its images from the run's data: nothing is drawn
    drawn_before = sorted(path.name for path in Path(synthetic_root).iterdir())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="engine.synthetic_pretraining"):
        apart = Path(resolve_synthetic_weights(demo_config(tmp_path, synthetic_root, "+trainer.fast_dev_run=true",
                                                           "demo_clip_patch_size=8", "synthetic_pretraining.videos=48")).detector.pretrained)
    assert sorted(path.name for path in Path(synthetic_root).iterdir()) == drawn_before and apart != quick
    assert "from the run's data, not the corpus of synthetic_pretraining.videos=48" in caplog.text
    trained = []

    def full(model_name, image_size, images, caption_ids, captions, recipe, patch_size=None, normalization=None):
        trained.append((len(images), recipe.epochs))
        return untrained_clip(model_name, image_size, images, patch_size)

    monkeypatch.setattr(synthetic_pretraining, "pretrain_tiny_clip", full)
    cfg = demo_config(tmp_path, synthetic_root, "demo_clip_patch_size=8")
    path = Path(resolve_synthetic_weights(cfg).detector.pretrained)
    assert path != quick and path.parent == quick.parent  # the recipe's tower: never the quick one
    corpus, _ = synthetic_pretraining.corpus_records(synthetic_root, 0, None, cfg.synthetic_pretraining.domains)
    assert trained == [(len(corpus), cfg.synthetic_pretraining.epochs)] and len(corpus) > synthetic_pretraining.QUICK_IMAGES


def test_the_tiny_patch_reaches_the_detector_and_the_pretraining(tmp_path, synthetic_root, monkeypatch):
    """``demo_clip_patch_size`` (conf/train.yaml) -> ``detector.tiny_patch_size`` of every CLIP detector at
    scale=demo (conf/scaled/detector/demo/): the detector's ViT and the pretrained weights get that patch."""
    from hydra.utils import instantiate

    from engine import preflight, synthetic_pretraining
    from engine.preflight import UserConfigError

    for detector in ("clip_finetune", "clip_linear_probe", "gmdf", "moa_clip", "suede"):
        cfg = compose(["scale=demo", f"detector={detector}", "demo_clip_patch_size=4"], tmp_path / detector)
        assert cfg.detector.tiny_patch_size == 4, detector
    cfg = compose(["scale=demo", "detector=clip_finetune", "demo_clip_patch_size=4"], tmp_path / "model")
    assert tuple(instantiate(cfg.detector).encoder.grid_size) == (16, 16)
    assert tuple(build_clip("ViT-B-16", size="tiny", image_size=64).visual.grid_size) == (8, 8)  # the default
    # the README job's GM-DF at the demo's patch 4 (the fast-dev-runs use patch 8): its blocks, second-order
    # features and prompts score a batch at the 16 x 16 grid
    cfg = compose(["experiment=gmdf_multidomain", "scale=demo", "demo_pretrained=null"], tmp_path / "gmdf")
    assert cfg.detector.tiny_patch_size == 4
    gmdf = instantiate(cfg.detector, _convert_="all").eval()
    assert tuple(gmdf.network.grid_size) == (16, 16)
    with torch.no_grad():
        assert gmdf(torch.randn(2, 3, 64, 64)).fake_probability().shape == (2,)
    # the weights are pretrained (and cached) for that patch: a patch-8 file would not load into the patch-4 ViT
    asked = []
    monkeypatch.setattr(synthetic_pretraining, "load_or_pretrain", lambda *args, **kwargs: asked.append(args) or tmp_path / "w.pt")
    resolve_synthetic_weights(demo_config(tmp_path, synthetic_root, "demo_clip_patch_size=4"))
    assert asked and asked[0][-1] == 4, asked
    # a patch that does not divide the input is named before training (engine/preflight.py)
    cfg = compose(["scale=demo", "detector=clip_finetune", "demo_clip_patch_size=5"], tmp_path / "five")
    with pytest.raises(UserConfigError, match=r"detector.input_size=64 is not a multiple of the patch size 5"):
        preflight.check_model(instantiate(cfg.detector), 64)


# The learning check pretrains at 32 px: a quarter of the demo's pixels and tokens at patch 8 (13 s instead of 22 s).
LEARNING_SIZE = 32


def test_pretraining_learns_the_captions_is_cached_and_loads_into_the_detector(tmp_path, synthetic_root, caplog):
    import json

    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    with caplog.at_level(logging.INFO, logger="engine.synthetic_pretraining"):
        path = load_or_pretrain(tmp_path, synthetic_root, 0, None, "ViT-B-16", LEARNING_SIZE, "clip", QUICK)
    # the run's random stream does not depend on whether the weights were cached
    assert torch.equal(torch.get_rng_state(), rng_before)
    stats = json.loads(path.with_suffix(".json").read_text())["stats"]
    # JFSFDB's 5 captions, half of the images genuine: a model blind to the image reaches the caption
    # entropy 1.386 and accuracy 0.5. Measured after 10 epochs at 32 px: loss 0.49, accuracy 0.75 (at 64 px,
    # 1.7x the time: loss 0.74, accuracy 0.71).
    assert stats["prior_loss"] == pytest.approx(1.3863, abs=1e-3) and stats["prior_accuracy"] == 0.5
    assert stats["last_epoch"]["loss"] < stats["prior_loss"] - 0.4, stats
    assert stats["last_epoch"]["accuracy"] > stats["prior_accuracy"] + 0.1, stats
    # a batch job's log (no terminal, so no progress bar) shows each epoch's caption loss as it goes
    progress = [r.getMessage() for r in caplog.records if "tiny CLIP pretraining: epoch" in r.getMessage()]
    assert len(progress) == QUICK.epochs and progress[-1].startswith(
        f"tiny CLIP pretraining: epoch {QUICK.epochs}/{QUICK.epochs}, caption loss {stats['last_epoch']['loss']:.3f}"), progress
    written = path.stat().st_mtime_ns
    assert load_or_pretrain(tmp_path, synthetic_root, 0, None, "ViT-B-16", LEARNING_SIZE, "clip", QUICK) == path
    assert path.stat().st_mtime_ns == written  # the second call reads the cache
    saved = torch.load(path, map_location="cpu", weights_only=True)
    loaded = build_clip("ViT-B-16", pretrained=str(path), size="tiny", image_size=LEARNING_SIZE).state_dict()
    random = build_clip("ViT-B-16", pretrained=None, size="tiny", image_size=LEARNING_SIZE).state_dict()
    name = "visual.transformer.resblocks.0.attn.in_proj_weight"
    assert torch.equal(loaded[name], saved[name]) and not torch.equal(random[name], saved[name])


def test_the_pretraining_logs_its_progress_at_most_ten_times(caplog):
    """The progress bar draws only on a terminal; a batch job's log gets every ceil(epochs / 10)-th epoch and the last."""
    from engine.synthetic_pretraining import pretrain_tiny_clip

    images = torch.randn(8, 3, LEARNING_SIZE, LEARNING_SIZE, generator=torch.Generator().manual_seed(0))
    recipe = PretrainingRecipe(domains=("jfsfdb",), epochs=25, batch_size=8, warmup_steps=1)
    with caplog.at_level(logging.INFO, logger="engine.synthetic_pretraining"):
        _, stats = pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, images, torch.arange(8) % 2, ["a real face.", "a fake face."], recipe)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tiny CLIP pretraining: epoch")]
    assert [int(line.split()[4].split("/")[0]) for line in lines] == [3, 6, 9, 12, 15, 18, 21, 24, 25], lines
    last = stats["last_epoch"]
    assert lines[-1].startswith(f"tiny CLIP pretraining: epoch 25/25, caption loss {last['loss']:.3f}, accuracy {last['accuracy']:.2f}, ")


def test_the_pretraining_trains_on_the_shifted_images():
    """``pad_crop`` reaches the training batches: the weights differ from the unshifted recipe's, and each is
    reproducible."""
    from engine.synthetic_pretraining import pretrain_tiny_clip

    images = torch.randn(16, 3, LEARNING_SIZE, LEARNING_SIZE, generator=torch.Generator().manual_seed(0))
    caption_ids = torch.arange(16) % 2
    name = "visual.transformer.resblocks.0.attn.in_proj_weight"

    def weights(pad_crop: int) -> torch.Tensor:
        recipe = PretrainingRecipe(domains=("jfsfdb",), epochs=1, batch_size=8, warmup_steps=1, pad_crop=pad_crop)
        model, _ = pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, images, caption_ids, ["a real face.", "a fake face."], recipe)
        return model.state_dict()[name]

    plain, shifted = weights(0), weights(4)
    assert torch.equal(weights(4), shifted) and not torch.equal(plain, shifted)


def test_the_pretraining_trains_on_the_augmented_images():
    """``augment`` runs its ops on each uint8 image of every batch: the weights differ from the same uint8
    images without ops, and each is reproducible. Images of the wrong kind for the recipe are refused."""
    from engine.synthetic_pretraining import pretrain_tiny_clip

    pixels = torch.randint(0, 256, (16, 3, LEARNING_SIZE, LEARNING_SIZE), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    caption_ids = torch.arange(16) % 2
    captions = ["a real face.", "a fake face."]
    name = "visual.transformer.resblocks.0.attn.in_proj_weight"

    def weights(augment) -> torch.Tensor:
        recipe = PretrainingRecipe(domains=("jfsfdb",), epochs=1, batch_size=8, warmup_steps=1, augment=augment)
        model, _ = pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, pixels, caption_ids, captions, recipe, normalization="clip")
        return model.state_dict()[name]

    compressed, none = weights({"jpeg": {"p": 1.0, "quality": [30, 50]}}), weights({})
    assert torch.equal(weights({"jpeg": {"p": 1.0, "quality": [30, 50]}}), compressed) and not torch.equal(none, compressed)
    recipe = PretrainingRecipe(domains=("jfsfdb",), epochs=1, batch_size=8, augment={})
    with pytest.raises(ValueError, match="augment runs on uint8 images and needs their normalization"):
        pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, pixels.float(), caption_ids, captions, recipe, normalization="clip")
    with pytest.raises(ValueError, match="augment runs on uint8 images and needs their normalization"):
        pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, pixels, caption_ids, captions, recipe)
    with pytest.raises(ValueError, match="uint8 images are taken only with synthetic_pretraining.augment"):
        pretrain_tiny_clip("ViT-B-16", LEARNING_SIZE, pixels, caption_ids, captions, replace(recipe, augment=None))


CLIP_FAMILY_EXPERIMENTS = (
    "gmdf_multidomain", "gmdf_ffpp", "gmdf_gid", "moa_ffpp", "moa_diff",
    "suede_uniattack_p1", "suede_uniattack_p2", "suede_jfsfdb",
)


@pytest.mark.parametrize("experiment", CLIP_FAMILY_EXPERIMENTS)
def test_every_clip_family_demo_starts_from_a_clip_pretrained_on_domains_its_protocol_never_reads(experiment, tmp_path):
    """Each CLIP-family experiment chooses its pretraining domains: disjoint from every dataset its
    protocol trains, validates or tests on; paper scale keeps OpenAI's weights."""
    cfg = compose([f"experiment={experiment}", "scale=demo"], tmp_path)
    assert cfg.detector.pretrained == "synthetic"
    pretraining = set(cfg.synthetic_pretraining.domains)
    used = set(protocol_domains(cfg).values())
    assert pretraining and used and not pretraining & used, (experiment, sorted(pretraining), sorted(used))
    assert compose([f"experiment={experiment}"], tmp_path / "paper").detector.pretrained == "openai"
