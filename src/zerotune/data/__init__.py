"""Data: built-in and file-based sources, preprocessing, augmentation and batching."""

from .base import RawDataset
from .build import build_data, normalize_inputs
from .bundle import DataBundle, DataMeta, Split
from .sources import SOURCES, get_source

__all__ = ["RawDataset", "build_data", "normalize_inputs", "DataBundle", "DataMeta", "Split", "SOURCES", "get_source"]
