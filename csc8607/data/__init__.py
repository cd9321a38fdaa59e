"""Datasets of any input type: sources read files, Dataset splits/caches/describes, BatchLoader serves batches.

An input type (image, audio, series) is a Dataset subclass with its decode step and batch transform.
"""
from csc8607.data.core import Dataset, SourceData
from csc8607.data.image import ImageData
from csc8607.data.loader import BatchLoader
from csc8607.data.split import Split

__all__ = ["Dataset", "ImageData", "SourceData", "Split", "BatchLoader"]
