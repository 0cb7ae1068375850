"""mmops: train multimodal models end to end (data -> stages -> evaluation -> registry -> production)."""

__version__ = "0.1.0"
