"""What the floating-point results of a computation depend on besides its inputs and seeds.

On the CPU, torch splits reductions (a sum, a mean, the inner products of a small matrix product)
across its intra-op threads, and another thread count adds the parts in another order. Measured with
torch 2.14 here: ``x.mean()`` of a seeded random (32, 4096) tensor differs in its last bits between 1
and 2 threads and from both at 3, 4 and 8 (most such tensors do, not all); a (5, 64) @ (64, 64)
product between 1 and 2. Such differences grow over a training into other weights (a 2-epoch demo
baseline: 66 of its 93 tensors differ between 1 and 2 threads) and other test numbers (docs/RESULTS.md,
"Reproducibility"). At one thread count a run is bit-for-bit repeatable. torch also picks its CPU
kernels by the processor's instruction set (AVX2, AVX-512, ...), and on a GPU by the device model:
other kernels, other rounding.

:func:`numerics_tag` names them, so that what is trained once and cached (the synthetic CLIP, the
dVAE tokenizer) is cached per tag, and a run records the tag it trained with.
"""

from __future__ import annotations


def numerics_tag(device=None) -> str:
    """``"cpu/<ISA>/<n> threads"`` (the instruction set torch's CPU kernels were chosen for, e.g. AVX2 or
    AVX512, and its intra-op thread count now) or ``"cuda/<device name>"``."""
    import torch

    device = torch.device(device if device is not None else "cpu")
    if device.type == "cpu":
        return f"cpu/{torch.backends.cpu.get_cpu_capability()}/{torch.get_num_threads()} threads"
    if device.type == "cuda":
        return f"cuda/{torch.cuda.get_device_name(device)}"
    return device.type
