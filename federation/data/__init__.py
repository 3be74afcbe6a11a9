"""Conversations on disk and in memory: types, readers, validation, synthesis, partitioning."""
