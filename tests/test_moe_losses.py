"""Auxiliary losses against hand-computed values on tiny inputs (load balance, z-loss, usage entropy,
attention alignment, domain prototypes, cross-domain similarity, image-text contrastive)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from losses import (
    DomainPrototypes,
    attention_alignment_loss,
    cross_domain_similarity_loss,
    domain_prototype_loss,
    expert_usage_entropy,
    image_text_contrastive_loss,
    image_text_logits,
    load_balancing_loss,
    negative_expert_usage_entropy,
    router_z_loss,
)

# ----------------------------------------------------------------------------------- load balance


@pytest.mark.parametrize("k", [1, 2])
def test_load_balancing_is_exactly_one_for_uniform_routing(k: int) -> None:
    num_experts = 4
    probs = torch.full((8, num_experts), 1 / num_experts)
    indices = torch.stack([(torch.arange(8) + j) % num_experts for j in range(k)], dim=1)
    assert load_balancing_loss(probs, indices, num_experts).item() == pytest.approx(1.0, abs=1e-7)


def test_load_balancing_hand_computed_and_collapsed() -> None:
    probs = torch.tensor([[0.8, 0.2], [0.6, 0.4]], requires_grad=True)
    loss = load_balancing_loss(probs, torch.tensor([[0], [0]]), num_experts=2)
    # f = [1, 0], P = [0.7, 0.3] -> 2 * 0.7
    assert loss.item() == pytest.approx(1.4)
    loss.backward()
    torch.testing.assert_close(probs.grad, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))  # d/dp = N * f_i / T
    collapsed = load_balancing_loss(torch.tensor([[1.0, 0, 0]] * 5), torch.zeros(5, 1, dtype=torch.long), 3)
    assert collapsed.item() == pytest.approx(3.0)


def test_load_balancing_rejects_wrong_expert_count() -> None:
    with pytest.raises(ValueError, match="num_experts 3"):
        load_balancing_loss(torch.rand(4, 2), torch.zeros(4, 1, dtype=torch.long), num_experts=3)


# ------------------------------------------------------------------------------------------ z-loss


def test_router_z_loss_hand_computed() -> None:
    assert router_z_loss(torch.zeros(3, 4)).item() == pytest.approx(math.log(4) ** 2)
    logits = torch.tensor([[0.0, math.log(3)], [1.0, 1.0]])
    expected = (math.log(4) ** 2 + (1 + math.log(2)) ** 2) / 2
    assert router_z_loss(logits).item() == pytest.approx(expected)
    assert router_z_loss(logits.to(torch.bfloat16)).dtype == torch.float32


# ------------------------------------------------------------------------------------- entropy


def test_expert_usage_entropy_of_batch_mean_distribution() -> None:
    assert expert_usage_entropy(torch.full((5, 4), 0.25)).item() == pytest.approx(math.log(4))
    # Confident but balanced tokens: the batch mean is uniform, so entropy is maximal.
    assert expert_usage_entropy(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).item() == pytest.approx(math.log(2))
    # Every token on expert 0: no spread at all (0 log 0 = 0, no NaN).
    assert expert_usage_entropy(torch.tensor([[1.0, 0.0, 0.0]] * 3)).item() == 0.0
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]])  # mean [0.5, 0.25, 0.25]
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert expert_usage_entropy(probs).item() == pytest.approx(expected)
    assert expert_usage_entropy(probs, divide_by_num_experts=True).item() == pytest.approx(expected / 3)
    assert negative_expert_usage_entropy(probs).item() == pytest.approx(-expected)


def test_minimising_negative_entropy_spreads_the_load() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0]] * 4, requires_grad=True)
    negative_expert_usage_entropy(logits.softmax(-1)).backward()
    # Gradient descent lowers the over-used expert's logit and raises the others.
    assert logits.grad[0, 0] > 0 and (logits.grad[0, 1:] < 0).all()


# --------------------------------------------------------------------------- attention alignment


def test_attention_alignment_hand_computed_two_domains() -> None:
    maps = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 0.0]]])
    # domain 7 mean [[.5, 0], [0, .5]], domain 3 = [[0, 1], [0, 0]] -> 0.25 + 1 + 0.25
    assert attention_alignment_loss(maps, torch.tensor([7, 7, 3])).item() == pytest.approx(1.5)


def test_attention_alignment_averages_over_domain_pairs() -> None:
    maps = torch.tensor([[[0.0]], [[1.0]], [[3.0]]])  # three 1x1 "maps"
    # pairs (0,1): 1, (0,3): 9, (1,3): 4 -> mean 14/3
    assert attention_alignment_loss(maps, torch.tensor([0, 1, 2])).item() == pytest.approx(14 / 3)
    per_head = torch.randn(4, 2, 3, 3)
    assert attention_alignment_loss(per_head, torch.tensor([0, 0, 0, 0])).item() == 0.0


def test_attention_alignment_sums_over_domain_pairs_as_eq8_writes_it() -> None:
    maps = torch.tensor([[[0.0]], [[1.0]], [[3.0]]])
    assert attention_alignment_loss(maps, torch.tensor([0, 1, 2]), "sum").item() == pytest.approx(14.0)
    with pytest.raises(ValueError, match="pair_reduction"):
        attention_alignment_loss(maps, torch.tensor([0, 1, 2]), "max")


# --------------------------------------------------------------------------------- prototypes


def test_domain_prototype_loss_hand_computed() -> None:
    features = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    prototypes = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    # sample 0 vs mu_0: 1 + 4 = 5; sample 1 vs mu_1: 0 + 4 = 4 -> mean 4.5
    assert domain_prototype_loss(features, torch.tensor([0, 1]), prototypes).item() == pytest.approx(4.5)


def test_domain_prototypes_ema_updates_as_buffers() -> None:
    cache = DomainPrototypes(num_domains=3, dim=2, momentum=0.25)
    assert list(cache.parameters()) == [] and {"prototypes", "initialized"} <= set(cache.state_dict())
    features = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 8.0]], requires_grad=True)
    cache.train()
    loss = cache(features, torch.tensor([0, 0, 2]))
    # First sighting: prototype = batch mean; domain 1 untouched.
    torch.testing.assert_close(cache.prototypes, torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 8.0]]))
    assert cache.initialized.tolist() == [True, False, True]
    assert loss.item() == pytest.approx((1 + 1 + 0) / 3)
    assert not cache.prototypes.requires_grad
    cache(torch.tensor([[7.0, 4.0]]), torch.tensor([0]))
    # 0.75 * [3, 0] + 0.25 * [7, 4]
    torch.testing.assert_close(cache.prototypes[0], torch.tensor([4.0, 1.0]))
    cache.eval()
    cache(torch.tensor([[100.0, 100.0]]), torch.tensor([0]))
    torch.testing.assert_close(cache.prototypes[0], torch.tensor([4.0, 1.0]))
    with pytest.raises(RuntimeError, match=r"no prototype yet for domain\(s\) \[1\]"):
        cache(torch.zeros(1, 2), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"must be in \[0, 2\]"):
        cache(torch.zeros(1, 2), torch.tensor([3]))


def _prototype_rank(rank: int, world_size: int, init_file: str, results: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    cache = DomainPrototypes(num_domains=2, dim=2, momentum=0.5)
    # Rank 0 sees domain 0 twice, rank 1 sees domain 0 once and domain 1 once.
    batches = {
        0: (torch.tensor([[0.0, 0.0], [3.0, 0.0]]), torch.tensor([0, 0])),
        1: (torch.tensor([[6.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 1])),
    }
    cache.update(*batches[rank])
    results[rank] = cache.prototypes.clone()
    dist.destroy_process_group()


@pytest.mark.slow
def test_domain_prototypes_all_reduce_keeps_ranks_identical(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_prototype_rank, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
    expected = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # global means: (0 + 3 + 6) / 3, and [0, 4]
    torch.testing.assert_close(results[0], expected)
    torch.testing.assert_close(results[1], expected)


# ---------------------------------------------------------------------- cross-domain similarity


def test_cross_domain_similarity_hand_computed() -> None:
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    loss = cross_domain_similarity_loss(features, torch.tensor([0, 0, 1]))
    # cross-domain pairs: (0, 2) -> 4, (1, 2) -> 1 + 4 = 5 -> mean 4.5; same-domain pair (0, 1) ignored.
    assert loss.item() == pytest.approx(4.5)
    loss.backward()
    assert torch.isfinite(features.grad).all()
    one_domain = cross_domain_similarity_loss(torch.randn(4, 3), torch.tensor([2, 2, 2, 2]))
    assert one_domain.item() == 0.0


# ----------------------------------------------------------------------- image-text contrastive


def test_image_text_contrastive_hand_computed() -> None:
    image = torch.tensor([[3.0, 0.0]])  # not unit norm: normalised inside
    texts = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    loss = image_text_contrastive_loss(image, texts, torch.tensor([0]), logit_scale=2.0)
    # logits [2, 0] -> -log(e^2 / (e^2 + 1))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)))
    wrong_target = image_text_contrastive_loss(image, texts, torch.tensor([1]), logit_scale=2.0)
    assert wrong_target.item() == pytest.approx(math.log(1 + math.exp(2)))


def test_image_text_logits_accept_per_text_scales() -> None:
    image = torch.tensor([[1.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = image_text_logits(image, texts, torch.tensor([10.0, 20.0]))
    torch.testing.assert_close(logits, torch.tensor([[10.0, 20.0]]) / math.sqrt(2))
    with pytest.raises(ValueError, match=r"logit_scale must be a scalar or \(2,\)"):
        image_text_logits(image, texts, torch.tensor([1.0, 2.0, 3.0]))
