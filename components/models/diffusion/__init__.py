"""Diffusion: the noise schedule and its samplers, the video compression network and the diffusion transformer."""
