"""Compose the project's Hydra config outside ``@hydra.main`` (for commands other than simulate)."""

from __future__ import annotations

from conf.settings import compose

__all__ = ["compose"]
