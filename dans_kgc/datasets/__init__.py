"""Benchmark datasets: registry, checksummed fetch, validated loading, statistics."""

from dans_kgc.datasets.fetch import fetch_dataset
from dans_kgc.datasets.loading import KnowledgeGraph, TripleFileError, load_dataset, read_triples
from dans_kgc.datasets.registry import DATASETS, DatasetSpec, FileSpec, get_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "FileSpec",
    "KnowledgeGraph",
    "TripleFileError",
    "fetch_dataset",
    "get_dataset",
    "load_dataset",
    "read_triples",
]
