"""Local federations: synthetic data on disk run by Flower's simulation runtime, baselines, benchmarks."""
