"""csc8607: one engine and one Hydra preset per section of the CSC8607 course report."""

__version__ = "0.1.0"
