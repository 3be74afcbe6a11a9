"""Coordinator side: the Flower ServerApp, strategies, checkpoints, reports and model bundles."""
