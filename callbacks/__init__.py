"""Callbacks that watch training: routing statistics, results writing, visualisations."""
