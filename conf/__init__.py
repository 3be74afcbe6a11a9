"""Hydra configuration groups (shipped with the package so `cesagram` finds them when installed)."""
