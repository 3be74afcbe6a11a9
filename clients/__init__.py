"""Node side: the Flower ClientApp and the node operator's commands."""
