"""(slow) The CLIP-family experiments learn at scale=demo: each starts from the tiny CLIP the suite
pretrains on embedded domains its protocol never reads, and is held to the in-domain and held-out
test AUC measured for it (docs/CLIP_METHODS.md, "Demo scale: the 8 experiments"), beside the plain
CLIP fine-tune from the same start (benchmarks/clip_methods_demo.py's baseline_overrides). A label
flip or a broken loss puts a run at or below 0.5. One training per test, so that each fits its timeout.
GM-DF's ``gmdf_multidomain`` case is the README's main job, run as typed in a fresh directory (it is the
experiment's demo at seed 0), so the slow suite trains it once for both checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import compose
from omegaconf import OmegaConf
from test_doc_commands import fresh_directory, new_results, run_as_typed

from engine.pipeline import run
from evaluation.results import load_results

METHOD, CLIP = "method", "clip_finetune"
# (experiment, run) -> {test set: floor}: under the seed-0 frame AUC measured for it on an idle 2-core machine
# at 2 threads (the measured values beside each, the earlier machine's first where two machines measured it;
# docs/CLIP_METHODS.md, which says which sets are in-domain and which held out): by 0.07-0.1, more where seeds
# spread (GM-DF's WDF: 0.66-0.81 over three seeds) or the later machine measured lower, to cover the other
# numerics of one thread per xdist worker; where three seeds were measured on the AVX-512 machine, by 0.05-0.08 under
# the lowest of them. A label flip or a broken loss lands near 0.5.
FLOORS: dict[tuple[str, str], dict[str, float]] = {
    # measured 0.871, 0.809 (seeds 1, 2: 0.899 / 0.674, 0.908 / 0.659); the README's command as typed (one thread), 0.879, 0.765:
    ("gmdf_multidomain", METHOD): {"ffpp": 0.8, "wilddeepfake": 0.55},
    ("gmdf_multidomain", CLIP): {"ffpp": 0.85, "dfdc": 0.78},  # measured 0.922, 0.856 (seeds 1, 2: 0.922 / 0.934, 0.932 / 0.887; WDF 0.63-0.71: not held)
    # gmdf_ffpp at its 30 demo epochs, seeds 0 / 1 / 2 on the AVX-512 machine (FF++ in-domain, Celeb-DF and DFDC held out):
    # Celeb-DF: 0.6615 in the clean-clone CI of c463471 (an AVX2 machine, one thread per worker; FF++ 0.9156 there):
    ("gmdf_ffpp", METHOD): {"ffpp": 0.82, "celebdf_v2": 0.6, "dfdc": 0.75},  # 0.913 / 0.917 / 0.874, 0.797 / 0.863 / 0.750, 0.821 / 0.835 / 0.910
    ("gmdf_ffpp", CLIP): {"ffpp": 0.83, "dfd": 0.85},  # measured 0.908 / 0.901 / 0.920, 0.925 / 0.919 / 0.929
    # gmdf_gid at its 30 demo epochs from the default pair pretrained with shifts of up to 4 px (conf/experiment/gmdf_gid.yaml),
    # seeds 0 / 1 / 2 on the AVX-512 machine (the held-out manipulation; no in-domain set; flip-only: 0.891 / 0.872 / 0.895):
    ("gmdf_gid", METHOD): {"gid": 0.8},  # measured 0.907 / 0.927 / 0.883
    ("gmdf_gid", CLIP): {"gid": 0.75},  # measured 0.937 / 0.817 / 0.956 (flip-only start: 0.868 / 0.833 / 0.764)
    # moa_diff at its 50 demo epochs on the stand-in of DiFF drawn with 32 / 4 / 6 sets per subset (the embedded one's
    # test images), balanced, the last epoch tested, from the pair drawn with 48 videos (conf/experiment/moa_diff.yaml,
    # conf/scaled/experiment/demo/moa_diff.yaml), seeds 0 / 1 / 2 at 2 threads on an AVX2 machine (T2I in-domain, I2I
    # held out); at one thread, as CI runs it, T2I 0.955, I2I 0.852 (the fine-tune 0.974, 0.948). On the embedded
    # stand-in, 100 epochs: 0.908 / 0.891 / 0.892, 0.681 / 0.701 / 0.661 (the fine-tune 0.781 / 0.859 / 0.872).
    ("moa_diff", METHOD): {"diff_t2i": 0.86, "diff_i2i": 0.75},  # 0.961 / 0.965 / 0.977, 0.881 / 0.887 / 0.892
    ("moa_diff", CLIP): {"diff_t2i": 0.87},  # measured 0.970 at seed 0 (0.974 at one thread)
    # pretrained on WildDeepfake, DiFF, UniAttackData and JFSFDB drawn with 48 videos per fake type, shifts of up to 4 px,
    # 20 epochs (conf/experiment/moa_ffpp.yaml), then 20 demo epochs; seeds 0 / 1 / 2 with the default GELU adapters on an
    # AVX2 machine (at 10 demo epochs 0.878 / 0.879 / 0.879, 0.991 / 0.991 / 0.986, the fine-tune 0.943 / 0.934 / 0.942,
    # 0.973 / 0.970 / 0.979; from the embedded corpus at 60 epochs, AVX-512 machine: 0.780 / 0.813 / 0.779). A tower of
    # the same recipe pretrained in another batch order gave 0.903, 0.983 at seed 0 (10 demo epochs), and CI's towers are
    # pretrained at one thread (0.889, 0.983 at 10 demo epochs): hence 0.09-0.1 under the lowest seed.
    ("moa_ffpp", METHOD): {"ffpp": 0.8, "dfdc": 0.89},  # measured 0.893 / 0.908 / 0.899, 0.993 / 0.992 / 0.987
    ("moa_ffpp", CLIP): {"ffpp": 0.86, "dfdc": 0.89},  # measured 0.943 / 0.954 / 0.949, 0.973 / 0.972 / 0.959
    # suede_jfsfdb pretrained on every embedded domain but JFSFDB, seeds 0 / 1 / 2 on the AVX-512 machine (the stand-in's
    # intra and cross lists are one; from UniAttackData + FF++ it was 0.803, fine-tune 0.774):
    ("suede_jfsfdb", METHOD): {"jfsfdb_cross": 0.85},  # measured 0.945 / 0.939 / 0.902
    ("suede_jfsfdb", CLIP): {"jfsfdb_cross": 0.88},  # measured 0.947 / 0.943 / 0.955
    ("suede_uniattack_p1", METHOD): {"uniattack_p1": 0.85},  # measured 0.922; 0.950 / 0.933 / 0.941 (P1 has no held-out set)
    ("suede_uniattack_p1", CLIP): {"uniattack_p1": 0.88},  # measured 0.949; 0.959 / 0.911 / 0.965
    # P2.1's unseen physical attacks (held out); seed 0 (the test's seed) gave the same on the AVX-512 machine, whose
    # seeds 1 / 2 spread wide (SUEDE 0.738 / 0.909, the fine-tune 0.910 / 0.854): a floor for seed 0 only.
    ("suede_uniattack_p2", METHOD): {"uniattack_p2_1": 0.8},  # measured 0.906
    ("suede_uniattack_p2", CLIP): {"uniattack_p2_1": 0.65},  # measured 0.798
}
# GM-DF's demos train for 434 s (gmdf_multidomain) and 280-356 s (gmdf_ffpp's and gmdf_gid's 30 epochs; 442-503 s on a
# busier evening) at 2 threads (the plain fine-tunes 125-144 s), and gmdf_gid first pretrains its shifted pair (404 s at
# 2 threads; its fine-tune, later, loads it, or pretrains it within its 1,200 s if the budget skipped the method): at
# one thread per xdist worker, with the tokenizer and the pretraining, that can be more than CI's --timeout 900 (the
# README's job as typed from an empty cache, alone: 757 s). moa_ffpp's two runs share a pretraining on four domains
# (536 s at 2 threads flip-only at 30 epochs; 921 s at 60 epochs with shifts, 1,310 s at one thread in CI; its 20 epochs
# on three times the images since 2026-12-07 take the same steps: 1,148-1,804 s at 2 threads on an AVX2 machine, and at
# one thread beside another one-thread run 1,842 s, the whole test 2,034 s at 10 demo epochs; at the 20 since, alone,
# pretraining 1,497 s, fit 307 s, the whole test 1,853 s: hence its 3,000 s), moa_diff's two share its pair drawn with
# 48 videos since 2026-12-08 (731 s at 2 threads, 924 s at one thread) and fit 1,600 steps (932-1,002 s at 2 threads;
# at one thread beside each other the method 1,246 s after the pretraining, the fine-tune 905 s after waiting for it:
# 2,199 s for the two),
# suede_jfsfdb's two one on six (522 s; the two tests took 1,286 s and 1,214 s at one thread each with another 2-thread
# run on the machine): the first pretrains, the other waits for its file. A longer timeout also makes a test start
# earlier in CI's budget (tests/conftest.py), so each is about twice what it needs alone (suede_jfsfdb's 1.4x what those
# two took beside the other run; moa_diff's 1.6x its one-thread tests, about 2,190 s and 1,840 s; moa_ffpp's 1.6x since its 60 epochs: in
# CI its pretraining took 1,310 s at one thread and the test about 1,500 s in all, docs/BENCHMARKS.md).
TIMEOUT_S = {("gmdf_multidomain", METHOD): 1800, ("gmdf_ffpp", METHOD): 1800, ("gmdf_gid", METHOD): 1800, ("moa_ffpp", METHOD): 3000, ("moa_ffpp", CLIP): 3000,
             ("suede_jfsfdb", METHOD): 1800, ("suede_jfsfdb", CLIP): 1800, ("moa_diff", METHOD): 3600, ("moa_diff", CLIP): 3000}
# The demo epochs of each experiment (conf/experiment/<name>.yaml `demo_epochs`; the plain fine-tune beside it
# trains as many): 10, more where the protocol's training set is one small domain (docs/CLIP_METHODS.md).
DEMO_EPOCHS = {"gmdf_ffpp": 30, "gmdf_gid": 30, "moa_ffpp": 20, "moa_diff": 50}
# GM-DF's inner loop trains the domain and class prompts with L_sis, which weighs 0 in the demo's outer loss:
# the inner L_sis of the last epoch must fall below this (seed 0: 2.00 -> 1.69 over the 10 epochs; ln 8 = 2.08
# at chance: 3 domains x 2 classes + the wildcard pair).
INNER_SIS_AFTER_TRAINING = 1.9
README_JOB = ("gmdf_multidomain", METHOD)
README_COMMAND = "python run.py experiment=gmdf_multidomain scale=demo"  # README.md: the main job (seed 0 by default)


def _overrides(experiment: str, which: str) -> list[str]:
    from benchmarks.clip_methods_demo import baseline_overrides

    return [f"experiment={experiment}"] if which == METHOD else baseline_overrides(experiment)


# The order the cases run in (the slow suite runs them last: tests/conftest.py LAST): each method's demo before the
# fine-tunes beside them, and longest first within each, so that the long ones start while CI's budget still lets them
# (tests/conftest.py pytest_runtest_setup) and the short ones fill the end. At one thread per worker: moa_ffpp's method
# pretrains its four-domain tower, gmdf_gid's its shifted pair and suede_jfsfdb's its six-domain one (their fine-tunes,
# later, load them), GM-DF's demos fit for 10-14 min, moa_diff's method pretrains its pair and fits for about
# 36 min in all (its fine-tune, later, loads the pair); the other SUEDE demos and most fine-tunes 2-8 min once their tower is pretrained. The
# README's job goes first of all: it is the run a researcher meets first, and xdist keeps up to three cases pending on
# each worker (LoadScopeScheduling), so in second place it could wait behind moa_ffpp's 1,500 s until the budget
# skipped it (the clean-clone CI of e0ec692, docs/BENCHMARKS.md).
ORDER = (
    README_JOB, ("moa_ffpp", METHOD), ("gmdf_ffpp", METHOD), ("gmdf_gid", METHOD), ("suede_jfsfdb", METHOD),
    ("moa_diff", METHOD), ("suede_uniattack_p1", METHOD), ("suede_uniattack_p2", METHOD),
    ("moa_diff", CLIP), ("gmdf_ffpp", CLIP), ("gmdf_gid", CLIP), ("gmdf_multidomain", CLIP), ("moa_ffpp", CLIP),
    ("suede_jfsfdb", CLIP), ("suede_uniattack_p1", CLIP), ("suede_uniattack_p2", CLIP),
)


def _params():
    for key in ORDER:
        yield pytest.param(*key, id="-".join(key), marks=pytest.mark.timeout(TIMEOUT_S.get(key, 1200)))


def test_every_case_has_its_place_in_the_order():
    assert sorted(ORDER) == sorted(FLOORS) and len(set(ORDER)) == len(ORDER)


@pytest.mark.parametrize(("experiment", "extra"), [
    *((name, ()) for name in sorted({experiment for experiment, _ in FLOORS})),
    ("moa_ffpp", ("+augment@synthetic_pretraining.augment=standard", "synthetic_pretraining.pad_crop=2")),
])
def test_the_fine_tune_starts_from_the_experiments_pretraining_recipe(experiment, extra, tmp_path):
    """The plain fine-tune beside each experiment is pretrained as the experiment is (its overrides written back in
    Hydra's grammar: lists, null, an augmentation set's mapping), with ``--override``'s changes too."""
    from benchmarks.clip_methods_demo import baseline_overrides

    def recipe(cfg):
        values = OmegaConf.to_container(cfg.synthetic_pretraining, resolve=True)
        values.pop("cache_dir")
        return values

    method = compose([f"experiment={experiment}", "scale=demo", *extra], tmp_path / "method")
    baseline = compose([*baseline_overrides(experiment, extra), "scale=demo"], tmp_path / "baseline")
    assert baseline.detector.mode == "finetune" and baseline.protocol.name == method.protocol.name
    assert recipe(baseline) == recipe(method)
    assert (baseline.trainer.max_epochs, baseline.data.augment) == (method.trainer.max_epochs, method.data.augment)
    assert (baseline.data.balance, baseline.test_ckpt) == (method.data.balance, method.test_ckpt)
    assert baseline.data.synthetic.spec == method.data.synthetic.spec


def test_moa_diff_demo_draws_a_larger_stand_in_balances_it_and_tests_its_last_epoch(tmp_path):
    """At scale=demo only: the DiFF stand-in is drawn with 32 training and 4 validation image sets per subset instead
    of 16 and 2, its T2I training sets are repeated to match its real ones, and validation does not select
    (docs/CLIP_METHODS.md, "A larger DiFF stand-in", "Selecting on 40 validation frames")."""
    from datamodules.sources import synthetic_spec

    demo = compose(["experiment=moa_diff", "scale=demo"], tmp_path / "demo")
    paper = compose(["experiment=moa_diff", "scale=paper"], tmp_path / "paper")
    spec = synthetic_spec(demo.data.synthetic.spec)
    assert (spec.videos, spec.domains) == ((32, 4, 6), ("diff",))
    assert (demo.data.balance, demo.test_ckpt) == ("oversample", "last")
    assert (paper.data.balance, paper.test_ckpt, paper.data.synthetic.spec) == ("none", "best", None)


@pytest.mark.slow
@pytest.mark.parametrize(("experiment", "which"), _params())
def test_clip_family_demo_learns_in_domain_and_held_out(experiment, which, tmp_path, synthetic_root):
    if (experiment, which) == README_JOB:
        clone = fresh_directory(tmp_path)
        done = run_as_typed(README_COMMAND, clone, timeout=TIMEOUT_S[README_JOB] - 60)
        assert done.returncode == 0, done.stderr[-4000:]
        (path,) = new_results(clone)
        run_dir = path.parent
    else:
        run(compose([*_overrides(experiment, which), "scale=demo", "seed=0"], tmp_path, synthetic_root))
        run_dir = tmp_path
    results = load_results(run_dir / "results.json")
    metrics = {"val": results["validation"]["metrics"], **results["tests"]}  # "val": the selecting validation set
    aucs = {name: round(m["frame"]["auc"], 4) for name, m in metrics.items()}
    print(experiment, which, aucs)
    assert all(aucs[name] >= floor for name, floor in FLOORS[experiment, which].items()), aucs
    detector = results["config"]["detector"]  # both from the tiny CLIP pretrained by the suite, at patch 4
    assert Path(detector["pretrained"]).parent.name == "synthetic_clip" and detector["tiny_patch_size"] == 4, detector
    assert results["config"]["trainer"]["max_epochs"] == DEMO_EPOCHS.get(experiment, 10) and results["config"]["data"]["augment"]["name"] == "flip_crop"
    assert results["config"]["seed"] == 0, results["config"]["seed"]
    if (experiment, which) == README_JOB:
        assert results["summary"]["test_sets"], run_dir  # as tests/test_doc_commands.py checks a demo command
        import pandas as pd

        logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
        inner = logged.dropna(subset=["train/loss_inner_sis"]).groupby("epoch")["train/loss_inner_sis"].mean()
        assert inner.iloc[-1] < INNER_SIS_AFTER_TRAINING < math.log(8), [round(v, 3) for v in inner]
