"""Benchmark: SUEDE's top-k shared + routed expert layer against dense MLPs, forward + backward.

Compares, at ViT-B/16 token counts (197 tokens per image):
  * ``clip_mlp``        -- the original CLIP MLP alone (dim -> shared_hidden -> dim), for reference;
  * ``suede_topk``      -- SharedRoutedMoE: shared MLP + top-k of E routed experts (sparse dispatch);
  * ``dense_same_flops``-- one MLP with hidden = shared_hidden + k * routed_hidden (same FLOPs as suede_topk);
  * ``all_experts``     -- shared MLP + every routed expert run densely on every token (``forward_all``),
    combined with the same top-k weights (what a layer without sparse dispatch would pay).

Prints the configuration, measured forward FLOPs (torch.utils.flop_counter) and the median wall time
of forward + backward per layer, and the ratios. A script, not a test:

    OMP_NUM_THREADS=1 python benchmarks/expert_layer.py --batch-size 8

``--layer dfmoe``: DFMoE's per-image dispatch of K of E heterogeneous CNN experts (``run_selected_experts``
with the routing of DFMoE's own gate) against running every expert on every image. The FLOP share of
the chosen experts (each image's K experts' forward FLOPs over all experts' FLOPs on all images) is
what the dispatch should cost; the printed ratio is (time selected / time all) / FLOP share:

    OMP_NUM_THREADS=1 python benchmarks/expert_layer.py --layer dfmoe --size tiny --image-size 64 --batch-size 32
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detectors.moe import ExpertBank, SharedRoutedMoE, TopKRouter, flatten_tokens, route


def mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class AllExpertsDense(nn.Module):
    """Shared MLP + every routed expert on every token, weighted by the (top-k, zero elsewhere) gate."""

    def __init__(self, layer: SharedRoutedMoE) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = route(self.layer.router, x)
        tokens = flatten_tokens(x)
        dense_weights = torch.zeros_like(routing.probs).scatter(1, routing.indices, routing.weights)
        every_expert = self.layer.bank.forward_all(tokens)  # (T, E, D)
        routed = (every_expert * dense_weights.unsqueeze(-1).to(every_expert.dtype)).sum(1)
        return self.layer.shared(x) + routed.reshape(x.shape)


def forward_output(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    output = module(x)
    return output[0] if isinstance(output, tuple) else output


def time_forward_backward(
    step: Callable[[], None], repeats: int, warmup: int, device: torch.device
) -> list[float]:
    def synchronise() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    timings = []
    for _ in range(repeats):
        synchronise()
        start = time.perf_counter()
        step()
        synchronise()
        timings.append(time.perf_counter() - start)
    return timings


def dfmoe_dispatch(args: argparse.Namespace) -> None:
    """DFMoE top-K of E experts: dispatch time against all experts, relative to the chosen experts' FLOP share."""
    from functools import partial

    from detectors.dfmoe import DFMoE
    from detectors.moe import run_selected_experts

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = DFMoE(
        optimizer=partial(torch.optim.Adam), size=args.size, pretrained=None, expert_pretrained=None,
        num_experts=args.experts, top_k=args.top_k, augmentation=False, input_size=args.image_size,
    ).to(device).train()
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    with torch.no_grad():
        routing = model.router(gate_feature=model.gate(images))
    one = images[:1]
    flops = []
    for expert in model.experts:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            expert(one)
        flops.append(counter.get_total_flops())
    chosen = torch.tensor(flops, dtype=torch.float64)[routing.indices.cpu()].sum()
    share = float(chosen / (args.batch_size * sum(flops)))

    def selected() -> None:
        run_selected_experts(images, routing, model.experts).float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    def every() -> None:
        torch.stack([expert(images) for expert in model.experts], 1).float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    print(
        f"config: DFMoE size={args.size} image={args.image_size} batch={args.batch_size} experts={args.experts} "
        f"top_k={args.top_k} threads={torch.get_num_threads()} device={device}"
    )
    names = [e.name for e in model.experts]
    print("forward GFLOP per image per expert: " + ", ".join(f"{n} {f / 1e9:.3f}" for n, f in zip(names, flops)))
    load = torch.bincount(routing.indices.reshape(-1).cpu(), minlength=args.experts)
    print(f"routing (DFMoE gate, random init): images per expert {load.tolist()}")
    # alternate the two so that a shared machine's load weighs on both alike
    times: dict[str, list[float]] = {"selected": [], "all": []}
    for _ in range(args.repeats):
        times["selected"] += time_forward_backward(selected, 1, args.warmup, device)
        times["all"] += time_forward_backward(every, 1, args.warmup, device)
    t_sel, t_all = statistics.median(times["selected"]), statistics.median(times["all"])
    print(f"selected experts: fwd+bwd median {t_sel * 1e3:.1f} ms (min {min(times['selected']) * 1e3:.1f}, max {max(times['selected']) * 1e3:.1f})")
    print(f"all experts:      fwd+bwd median {t_all * 1e3:.1f} ms (min {min(times['all']) * 1e3:.1f}, max {max(times['all']) * 1e3:.1f})")
    print(f"FLOP share of the chosen experts = {share:.3f}; time selected / all = {t_sel / t_all:.3f}")
    print(f"ratio (time share) / (FLOP share) = {t_sel / t_all / share:.3f}  (target <= 1.05)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--tokens", type=int, default=197, help="tokens per image (ViT-B/16 at 224: 196 + CLS)"
    )
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--shared-hidden", type=int, default=3072, help="CLIP ViT-B/16 MLP hidden size")
    parser.add_argument(
        "--routed-hidden", type=int, default=768, help="routed experts' hidden size (default shared/4)"
    )
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="autocast dtype")
    parser.add_argument("--layer", choices=["suede", "dfmoe"], default="suede")
    parser.add_argument("--size", choices=["tiny", "paper"], default="tiny", help="--layer dfmoe: expert size")
    parser.add_argument("--image-size", type=int, default=64, help="--layer dfmoe: input size")
    args = parser.parse_args()
    if args.layer == "dfmoe":
        if args.experts == 4 and args.top_k == 2:  # SUEDE's defaults; DFMoE's are 5 experts, K = 2
            args.experts = 5
        dfmoe_dispatch(args)
        return

    torch.manual_seed(0)
    device = torch.device(args.device)
    suede = SharedRoutedMoE(
        mlp(args.dim, args.shared_hidden),
        ExpertBank(args.experts, args.dim, args.routed_hidden),
        TopKRouter(args.dim, args.experts, args.top_k),
    )
    same_flops_hidden = args.shared_hidden + args.top_k * args.routed_hidden
    layers: dict[str, nn.Module] = {
        "clip_mlp": mlp(args.dim, args.shared_hidden),
        "suede_topk": suede,
        "dense_same_flops": mlp(args.dim, same_flops_hidden),
        "all_experts": AllExpertsDense(suede),
    }
    x = torch.randn(args.batch_size, args.tokens, args.dim, device=device)
    print(
        f"config: device={device} threads={torch.get_num_threads()} dtype={args.dtype} "
        f"batch={args.batch_size} tokens/image={args.tokens} (T={args.batch_size * args.tokens}) dim={args.dim} "
        f"shared_hidden={args.shared_hidden} routed_hidden={args.routed_hidden} experts={args.experts} "
        f"top_k={args.top_k} dense_same_flops_hidden={same_flops_hidden} repeats={args.repeats} warmup={args.warmup}"
    )
    autocast_enabled = args.dtype == "bfloat16"
    results: dict[str, float] = {}
    for name, layer in layers.items():
        layer.to(device)

        def step(layer: nn.Module = layer) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_enabled):
                output = forward_output(layer, x)
            output.float().pow(2).mean().backward()
            layer.zero_grad(set_to_none=True)

        with FlopCounterMode(display=False) as counter, torch.no_grad():
            forward_output(layer, x)
        timings = time_forward_backward(step, args.repeats, args.warmup, device)
        results[name] = statistics.median(timings)
        print(
            f"{name:>17}: forward {counter.get_total_flops() / 1e9:8.2f} GFLOP | fwd+bwd median "
            f"{results[name] * 1e3:9.1f} ms (min {min(timings) * 1e3:.1f}, max {max(timings) * 1e3:.1f})"
        )
    with torch.no_grad():
        load = torch.bincount(route(suede.router, x).indices.reshape(-1), minlength=args.experts)
    print(f"routed assignments per expert (random init router): {load.tolist()}")
    print(f"ratio suede_topk / dense_same_flops = {results['suede_topk'] / results['dense_same_flops']:.2f}")
    print(f"ratio suede_topk / all_experts      = {results['suede_topk'] / results['all_experts']:.2f}")
    print(f"ratio suede_topk / clip_mlp         = {results['suede_topk'] / results['clip_mlp']:.2f}")


if __name__ == "__main__":
    main()
