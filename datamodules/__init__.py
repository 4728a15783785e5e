"""Datasets as LightningDataModules: readers of the official layouts, the embedded synthetic
data, the generic protocol-driven datamodule and face preprocessing."""
