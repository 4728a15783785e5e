"""Bottleneck adapters and MoA-CLIP's Mixture-of-Adapters for a frozen transformer.

* :class:`BottleneckAdapter`: ``A(h) = W_up act(W_down h)`` (with biases unless ``bias=False``), output zero at init by default
  so adding it to a frozen block leaves the block unchanged at step 0. GM-DF's per-domain expert
  ``Delta F^n`` and MoA-CLIP's shared ``Adapter_0`` are this module.
* :class:`MixtureOfAdapters`: MoA-CLIP Eq. 6, ``delta(h) = Adapter_0(h) + sum_k alpha_k Adapter_k(h)``;
  the block adds it to its FFN output (``h_out = h_FFN + delta(h_in)``). ``routing_mode`` switches
  between oracle routing by domain id (``"domain"``, step 1 of MoA-CLIP's alternating schedule) and
  the learned router (``"learned"``, step 2 and test time). ``adapter_parameters()`` and
  ``router_parameters()`` give the two groups that the schedule freezes in turn.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from common.choices import check_choice
from detectors.moe.experts import ExpertBank, activation_function
from detectors.moe.routing import DenseRouter, DomainRouter, GateInput, TopKRouter, flatten_tokens, route
from detectors.output import RoutingInfo

AdapterRouterKind = Literal["softmax", "domain", "topk"]
RoutingMode = Literal["domain", "learned"]
ROUTER_KINDS: tuple[str, ...] = get_args(AdapterRouterKind)
ROUTING_MODES: tuple[str, ...] = get_args(RoutingMode)


class BottleneckAdapter(nn.Module):
    """``h -> W_up act(W_down h + b_down) + b_up`` with ``W_down: dim -> hidden_dim``, ``W_up: hidden_dim -> dim``
    (``bias=False``: no ``b_down``, ``b_up``)."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        activation: str = "gelu",
        zero_init_output: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden_dim < 1:
            raise ValueError(f"BottleneckAdapter: dim and hidden_dim must be >= 1, got {dim}, {hidden_dim}")
        self.down = nn.Linear(dim, hidden_dim, bias=bias)
        self.activation = activation_function(activation)
        self.up = nn.Linear(hidden_dim, dim, bias=bias)
        if zero_init_output:
            nn.init.zeros_(self.up.weight)
            if bias:
                nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(self.activation(self.down(h)))


class MixtureOfAdapters(nn.Module):
    """``delta(h) = Adapter_0(h) + sum_k alpha_k Adapter_k(h)`` over ``num_adapters`` domain adapters.

    ``router``:
      * ``"softmax"`` -- alpha = softmax(Router(h)) over all adapters (MoA-CLIP); ``router_hidden_dim``
        makes the router a small MLP instead of a linear layer;
      * ``"topk"``    -- only the ``top_k`` largest alphas are kept and renormalised;
      * ``"domain"``  -- no learned router: always oracle routing by domain id.
    ``gate_input`` (``"token"`` or ``"mean"``) routes each token or each sample (mean of its tokens).

    ``routing_mode`` is ``"domain"`` (adapter d for a sample of domain d, weight 1; needs ``domain_ids``)
    or ``"learned"`` (the router); it starts as ``"learned"`` unless ``router="domain"``.
    ``forward(h, domain_ids=None) -> (delta same shape as h, token-level RoutingInfo over the domain adapters)``.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        num_adapters: int,
        shared_adapter: bool = True,
        router: AdapterRouterKind = "softmax",
        top_k: int = 2,
        router_hidden_dim: int | None = None,
        gate_input: GateInput = "token",
        activation: str = "gelu",
        zero_init_output: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_choice("MixtureOfAdapters: router", router, ROUTER_KINDS)
        if gate_input == "external":
            raise ValueError(
                "MixtureOfAdapters: gate_input='external' is not supported; use 'token' or 'mean'"
            )
        self.dim = dim
        self.num_adapters = num_adapters
        self.router_kind = router
        self.shared = (
            BottleneckAdapter(dim, hidden_dim, activation, zero_init_output, bias) if shared_adapter else None
        )
        self.adapters = ExpertBank(
            num_adapters, dim, hidden_dim, activation, zero_init_output=zero_init_output, bias=bias
        )
        self.domain_router = DomainRouter(num_adapters)
        self.router: DenseRouter | TopKRouter | None
        if router == "softmax":
            self.router = DenseRouter(dim, num_adapters, gate_input=gate_input, hidden_dim=router_hidden_dim)
        elif router == "topk":
            self.router = TopKRouter(
                dim, num_adapters, top_k, gate_input=gate_input, hidden_dim=router_hidden_dim
            )
        else:
            self.router = None
        self._routing_mode: RoutingMode = "domain" if self.router is None else "learned"

    @property
    def routing_mode(self) -> RoutingMode:
        return self._routing_mode

    @routing_mode.setter
    def routing_mode(self, mode: RoutingMode) -> None:
        check_choice("MixtureOfAdapters.routing_mode", mode, ROUTING_MODES)
        if mode == "learned" and self.router is None:
            raise ValueError(
                "MixtureOfAdapters: routing_mode='learned' needs a learned router, but router='domain'"
            )
        self._routing_mode = mode

    def adapter_parameters(self) -> list[nn.Parameter]:
        """Shared and domain adapters' parameters (trained in MoA-CLIP step 1, frozen in step 2)."""
        shared = [] if self.shared is None else list(self.shared.parameters())
        return shared + list(self.adapters.parameters())

    def router_parameters(self) -> list[nn.Parameter]:
        """The learned router's parameters (trained in step 2); empty for ``router="domain"``."""
        return [] if self.router is None else list(self.router.parameters())

    def forward(
        self, h: torch.Tensor, domain_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, RoutingInfo]:
        if h.shape[-1] != self.dim:
            raise ValueError(
                f"MixtureOfAdapters: expected features of size {self.dim}, got shape {tuple(h.shape)}"
            )
        if self._routing_mode == "domain":
            if domain_ids is None:
                raise ValueError(
                    "MixtureOfAdapters: routing_mode='domain' needs domain_ids of shape (B,), got None"
                )
            routing = route(self.domain_router, h, domain_ids=domain_ids)
        else:
            routing = route(self.router, h)
        delta = self.adapters(flatten_tokens(h), routing).reshape(h.shape)
        if self.shared is not None:
            delta = delta + self.shared(h)
        return delta, routing
