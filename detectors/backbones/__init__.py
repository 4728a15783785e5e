"""Backbone factories: timm CNNs/ViTs and open_clip CLIP, with pretrained none / tag / local file."""
