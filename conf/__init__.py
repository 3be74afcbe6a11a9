"""Hydra configuration groups (shipped with the package so `cesagram` finds them when installed).

Importing the package registers their structured configs (:mod:`conf.schema`): Hydra
imports it before it reads a YAML file, so every composition is checked against them.
"""

from conf import schema as schema  # registers the schemas in Hydra's ConfigStore
