"""Expert layers: dropless sparse dispatch, a bank of homogeneous MLP experts, and SUEDE's shared + routed MoE.

* :func:`dispatch_by_expert` sorts the (token, slot) assignments of a routing by expert so each expert
  runs once on the contiguous block of tokens routed to it ("dropless": no capacity factor, no token
  is dropped, no padding).
* :func:`run_selected_experts` runs *any* list of expert modules (e.g. DFMoE's heterogeneous
  EfficientNets) on only the inputs routed to them and returns per-slot outputs ``(T, k, D_out)``.
* :class:`ExpertBank` holds E identical MLP experts as stacked weight tensors and computes
  ``sum_j w_tj E_{i_tj}(x_t)`` with one matmul pair per expert on its tokens, then a scatter-add.
* :class:`SharedRoutedMoE` is SUEDE's layer ``out = E_shared(x) + sum_{i in topk} g_i E_i(x)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import check_choice
from detectors.moe.routing import DenseRouter, DomainRouter, GateInput, TopKRouter, flatten_tokens, route
from detectors.output import RoutingInfo

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    # OpenAI CLIP checkpoints were trained with QuickGELU; experts mirroring their MLPs may want it.
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "silu": F.silu,
    # A linear bottleneck, e.g. MoA-CLIP's adapters as Eq. 4 writes them (h W_in W_out).
    "identity": lambda x: x,
}


def activation_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise activation called ``name`` (gelu, quick_gelu, relu, silu, identity)."""
    check_choice("experts: activation", name, _ACTIVATIONS)
    return _ACTIVATIONS[name]


@dataclass(frozen=True)
class ExpertDispatch:
    """The assignments of a routing, sorted by expert.

    ``token_ids[a]``: the token (row of the routed input) of sorted assignment a; ``slot_ids[a]``: its
    flat position ``t * k + j`` in ``routing.indices``; ``counts[e]``: how many assignments expert e
    received (a Python list: splitting into per-expert blocks needs the sizes on the host).
    """

    token_ids: torch.Tensor
    slot_ids: torch.Tensor
    counts: list[int]


def dispatch_by_expert(indices: torch.Tensor, num_experts: int) -> ExpertDispatch:
    """Group the ``(T, k)`` expert ``indices`` of a routing by expert (stable sort, so tokens keep their
    order inside an expert's block)."""
    if indices.ndim != 2:
        raise ValueError(
            f"experts.dispatch_by_expert: indices must be (T, k), got shape {tuple(indices.shape)}"
        )
    flat = indices.reshape(-1).long()
    # One bincount (one host sync) gives both the per-expert counts and the range check: shifting by
    # one puts every negative index in bin 0 and every index >= num_experts past bin num_experts.
    shifted_counts = torch.bincount(flat.clamp_min(-1) + 1, minlength=num_experts + 1).tolist()
    negative, counts, too_large = (
        shifted_counts[0],
        shifted_counts[1 : num_experts + 1],
        sum(shifted_counts[num_experts + 1 :]),
    )
    if negative or too_large:
        raise ValueError(
            f"experts.dispatch_by_expert: expert indices must be in [0, {num_experts - 1}], got {negative} "
            f"negative and {too_large} >= {num_experts}"
        )
    slot_ids = torch.argsort(flat, stable=True)
    token_ids = torch.div(slot_ids, indices.shape[1], rounding_mode="floor")
    return ExpertDispatch(token_ids=token_ids, slot_ids=slot_ids, counts=counts)


def run_selected_experts(
    inputs: torch.Tensor, routing: RoutingInfo, experts: Sequence[Callable[[torch.Tensor], torch.Tensor]]
) -> torch.Tensor:
    """Run each expert only on the rows of ``inputs`` routed to it.

    ``inputs``: ``(T, ...)`` (tokens, or whole images for per-sample routing); ``routing.indices``: ``(T, k)``;
    ``experts[e]`` maps ``(n, ...)`` to ``(n, D_out)`` with the same ``D_out`` for every expert.
    Returns the *unweighted* per-slot outputs ``(T, k, D_out)``: ``out[t, j] = experts[indices[t, j]](inputs[t])``.
    Weighted fusion (``(out * routing.weights[..., None]).sum(1)``), max or mean is the caller's choice.
    """
    num_rows, k = routing.indices.shape
    if inputs.shape[0] != num_rows:
        raise ValueError(
            f"experts.run_selected_experts: {inputs.shape[0]} input rows but routing has {num_rows} rows"
        )
    if num_rows == 0:
        raise ValueError("experts.run_selected_experts: empty routing (0 rows); the output width is unknown")
    dispatch = dispatch_by_expert(routing.indices, len(experts))
    sorted_inputs = inputs[dispatch.token_ids]
    outputs = []
    for expert_id, block in enumerate(sorted_inputs.split(dispatch.counts)):
        if dispatch.counts[expert_id] == 0:
            continue
        output = experts[expert_id](block)
        if output.ndim != 2 or output.shape[0] != block.shape[0]:
            raise ValueError(
                f"experts.run_selected_experts: expert {expert_id} returned shape {tuple(output.shape)}, "
                f"expected ({block.shape[0]}, D_out)"
            )
        outputs.append(output)
    widths = {output.shape[1] for output in outputs}
    if len(widths) > 1:
        raise ValueError(f"experts.run_selected_experts: experts returned different widths {sorted(widths)}")
    sorted_outputs = torch.cat(outputs)
    # Undo the sort with a gather: position slot_ids[a] of the (T*k) slots holds sorted output a.
    inverse = torch.empty_like(dispatch.slot_ids)
    inverse[dispatch.slot_ids] = torch.arange(dispatch.slot_ids.numel(), device=inverse.device)
    return sorted_outputs[inverse].reshape(num_rows, k, -1)


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight (+ bias)``, fused where there is a bias."""
    return x @ weight if bias is None else torch.addmm(bias, x, weight)


class ExpertBank(nn.Module):
    """E homogeneous two-layer MLP experts ``E_i(x) = W2_i act(W1_i x + b1_i) + b2_i``, stored stacked.

    ``forward(x (T, D), routing) -> (T, D)`` computes ``y_t = sum_j w_tj E_{i_tj}(x_t)`` sparsely: only the
    (token, expert) pairs in ``routing.indices`` are computed (tokens grouped by expert, one matmul pair
    per expert that received tokens, weighted results scatter-added back). ``zero_init_output`` zeroes
    W2 and b2 so the bank outputs exactly 0 at init (a residual branch that starts as the identity).
    ``bias=False`` drops b1 and b2 (``activation="identity"`` then makes each expert the linear map
    ``x W1 W2``, MoA-CLIP's Eq. 4).
    """

    def __init__(
        self,
        num_experts: int,
        dim: int,
        hidden_dim: int,
        activation: str = "gelu",
        dropout: float = 0.0,
        zero_init_output: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if min(num_experts, dim, hidden_dim) < 1:
            raise ValueError(
                f"ExpertBank: num_experts, dim and hidden_dim must be >= 1, got {num_experts}, {dim}, {hidden_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ExpertBank: dropout must be in [0, 1), got {dropout}")
        self.num_experts = num_experts
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.activation_name = activation
        self.activation = activation_function(activation)
        self.dropout = nn.Dropout(dropout)
        # Registered in this order (w_in, b_in, w_out, b_out): the order of parameters() feeds the optimiser and the
        # gradient norm's sum, so it stays what earlier results were measured with.
        self.w_in = nn.Parameter(torch.empty(num_experts, dim, hidden_dim))
        self.b_in: nn.Parameter | None = nn.Parameter(torch.empty(num_experts, hidden_dim)) if bias else None
        self.w_out = nn.Parameter(torch.empty(num_experts, hidden_dim, dim))
        self.b_out: nn.Parameter | None = nn.Parameter(torch.empty(num_experts, dim)) if bias else None
        self.reset_parameters()
        if zero_init_output:
            self.zero_init_output_()

    def reset_parameters(self) -> None:
        # nn.Linear's default init, per expert: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
        for weight, bias, fan_in in (
            (self.w_in, self.b_in, self.dim),
            (self.w_out, self.b_out, self.hidden_dim),
        ):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(weight, -bound, bound)
            if bias is not None:
                nn.init.uniform_(bias, -bound, bound)

    @torch.no_grad()
    def zero_init_output_(self) -> None:
        """Zero every expert's output projection, so the bank's output is 0 until it is trained."""
        self.w_out.zero_()
        if self.b_out is not None:
            self.b_out.zero_()

    def expert_forward(self, expert_id: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``expert_id`` on ``x`` (n, D) -> (n, D)."""
        hidden = _affine(x, self.w_in[expert_id], None if self.b_in is None else self.b_in[expert_id])
        hidden = self.dropout(self.activation(hidden))
        return self.dropout(_affine(hidden, self.w_out[expert_id], None if self.b_out is None else self.b_out[expert_id]))

    def forward(self, x: torch.Tensor, routing: RoutingInfo) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"ExpertBank: x must be (T, {self.dim}), got shape {tuple(x.shape)}")
        if routing.indices.shape[0] != x.shape[0] or routing.weights.shape != routing.indices.shape:
            raise ValueError(
                f"ExpertBank: routing indices {tuple(routing.indices.shape)} / weights "
                f"{tuple(routing.weights.shape)} do not match {x.shape[0]} tokens"
            )
        dispatch = dispatch_by_expert(routing.indices, self.num_experts)
        sorted_tokens = x[dispatch.token_ids]
        outputs = [
            self.expert_forward(expert_id, block)
            for expert_id, block in enumerate(sorted_tokens.split(dispatch.counts))
            if dispatch.counts[expert_id] > 0
        ]
        if not outputs:
            return x.new_zeros(x.shape)
        sorted_outputs = torch.cat(outputs)
        sorted_weights = routing.weights.reshape(-1)[dispatch.slot_ids].to(sorted_outputs.dtype)
        weighted = sorted_outputs * sorted_weights.unsqueeze(1)
        return weighted.new_zeros(x.shape).index_add_(0, dispatch.token_ids, weighted)

    def forward_all(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on every token, densely: ``(T, D) -> (T, E, D)`` (GM-DF's attention over all domain
        experts' views; also the dense reference in benchmarks)."""
        hidden = torch.einsum("td,edh->teh", x, self.w_in)
        hidden = self.activation(hidden if self.b_in is None else hidden + self.b_in)
        out = torch.einsum("teh,ehd->ted", self.dropout(hidden), self.w_out)
        return out if self.b_out is None else out + self.b_out

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, dim={self.dim}, hidden_dim={self.hidden_dim}, "
            f"activation={self.activation_name!r}, bias={self.b_in is not None}"
        )


def mlp_dims(mlp: nn.Module) -> tuple[int, int]:
    """(dim, hidden_dim) of a two-layer MLP module (first Linear: dim -> hidden, last Linear: hidden -> dim),
    e.g. an open_clip block's ``mlp`` (c_fc, gelu, c_proj) or a timm ``Mlp``."""
    linears = [module for module in mlp.modules() if isinstance(module, nn.Linear)]
    if len(linears) < 2:
        raise ValueError(
            f"experts.mlp_dims: expected an MLP with >= 2 nn.Linear layers, got {type(mlp).__name__}"
        )
    first, last = linears[0], linears[-1]
    if last.out_features != first.in_features:
        raise ValueError(
            f"experts.mlp_dims: MLP maps {first.in_features} -> {last.out_features}; an expert layer needs dim -> dim"
        )
    return first.in_features, first.out_features


class SharedRoutedMoE(nn.Module):
    """SUEDE's shared + routed expert layer: ``out = E_shared(x) + sum_{i in topk} g_i E_i(x)``.

    ``x``: ``(T, D)`` or ``(B, N, D)``; returns ``(out same shape as x, RoutingInfo)`` with a token-level
    routing (sample-level routers are expanded to the tokens of each sample). ``zero_init_routed`` zeroes
    the routed experts' output projection so the layer equals ``shared`` at init.
    """

    def __init__(
        self,
        shared: nn.Module,
        bank: ExpertBank,
        router: TopKRouter | DenseRouter | DomainRouter,
        zero_init_routed: bool = False,
    ) -> None:
        super().__init__()
        if router.num_experts != bank.num_experts:
            raise ValueError(
                f"SharedRoutedMoE: router has {router.num_experts} experts but the bank has {bank.num_experts}"
            )
        self.shared = shared
        self.bank = bank
        self.router = router
        if zero_init_routed:
            bank.zero_init_output_()

    @classmethod
    def from_mlp(
        cls,
        mlp: nn.Module,
        num_experts: int = 4,
        k: int = 2,
        routed_hidden_dim: int | None = None,
        activation: str = "gelu",
        zero_init_routed: bool = True,
        noisy_gating: bool = False,
        gate_input: GateInput = "token",
    ) -> SharedRoutedMoE:
        """Build the layer around an existing MLP (e.g. ``block.mlp`` of a loaded CLIP): the shared expert
        is a deep copy of ``mlp`` (the original is left untouched), the routed experts have hidden size
        ``routed_hidden_dim`` (default: the MLP's own hidden size) and, with ``zero_init_routed``, output
        0 so the layer reproduces ``mlp`` exactly at init. Routed experts and router are placed on the
        MLP's device; the bank also takes its dtype (the router computes in fp32 regardless)."""
        dim, hidden_dim = mlp_dims(mlp)
        shared = copy.deepcopy(mlp)
        bank = ExpertBank(num_experts, dim, routed_hidden_dim or hidden_dim, activation=activation)
        router = TopKRouter(dim, num_experts, k, noisy_gating=noisy_gating, gate_input=gate_input)
        reference = next(mlp.parameters())
        bank.to(device=reference.device, dtype=reference.dtype)
        router.to(device=reference.device)
        return cls(shared, bank, router, zero_init_routed=zero_init_routed)

    def forward(
        self,
        x: torch.Tensor,
        gate_feature: torch.Tensor | None = None,
        domain_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, RoutingInfo]:
        routing = route(self.router, x, gate_feature=gate_feature, domain_ids=domain_ids)
        routed = self.bank(flatten_tokens(x), routing).reshape(x.shape)
        return self.shared(x) + routed, routing
