"""Detectors: one LightningModule per method on a shared base, plus backbones and MoE parts."""
