"""Datasets as uint8 arrays: sources decode once, ImageData splits and describes, BatchLoader serves batches."""
from csc8607.data.core import ImageData, SourceData, Split
from csc8607.data.loader import BatchLoader

__all__ = ["ImageData", "SourceData", "Split", "BatchLoader"]
