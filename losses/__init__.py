"""Auxiliary and task losses: pure, unweighted functions and small modules, one concept each."""

from losses.attention_alignment import attention_alignment_loss
from losses.cross_domain_similarity import cross_domain_similarity_loss
from losses.domain_prototypes import DomainPrototypes, domain_prototype_loss
from losses.expert_entropy import expert_usage_entropy, negative_expert_usage_entropy
from losses.image_text_contrastive import image_text_contrastive_loss, image_text_logits
from losses.load_balance import load_balancing_loss
from losses.router_z import router_z_loss

__all__ = [
    "DomainPrototypes",
    "attention_alignment_loss",
    "cross_domain_similarity_loss",
    "domain_prototype_loss",
    "expert_usage_entropy",
    "image_text_contrastive_loss",
    "image_text_logits",
    "load_balancing_loss",
    "negative_expert_usage_entropy",
    "router_z_loss",
]
