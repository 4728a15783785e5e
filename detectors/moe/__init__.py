"""Mixture-of-experts building blocks shared by all methods: routers, expert banks, adapters."""

from detectors.moe.adapters import BottleneckAdapter, MixtureOfAdapters
from detectors.moe.experts import (
    ExpertBank,
    ExpertDispatch,
    SharedRoutedMoE,
    activation_function,
    dispatch_by_expert,
    mlp_dims,
    run_selected_experts,
)
from detectors.moe.routing import (
    DenseRouter,
    DomainRouter,
    TopKRouter,
    expand_routing,
    flatten_tokens,
    mean_pool_tokens,
    route,
)

__all__ = [
    "BottleneckAdapter",
    "DenseRouter",
    "DomainRouter",
    "ExpertBank",
    "ExpertDispatch",
    "MixtureOfAdapters",
    "SharedRoutedMoE",
    "TopKRouter",
    "activation_function",
    "dispatch_by_expert",
    "expand_routing",
    "flatten_tokens",
    "mean_pool_tokens",
    "mlp_dims",
    "route",
    "run_selected_experts",
]
