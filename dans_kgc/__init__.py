"""DANS-KGC reproduction harness: diffusion-based adaptive negative sampling for KGC."""

__version__ = "0.1.0"
