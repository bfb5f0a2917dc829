"""The table of data sources by name: built-in sets and file formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError
from .builtin import (
    load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine, make_classification, make_regression,
)
from .base import RawDataset, paths_of


@dataclass(frozen=True)
class DataSource:
    """A data set by name: how to load it from a DataConfig, and what `zerotune datasets` says of it."""

    name: str
    load: Callable  # (DataConfig) -> RawDataset
    summary: str
    needs_path: bool = False
    many_paths: bool = False  # data.path may be a list of files, joined into one data set


def _mnist(variant: str):
    def load(cfg) -> RawDataset:
        from .idx import load_mnist_dir

        if cfg.download:
            from .download import download_dataset

            download_dataset(variant, cfg.path)
        return load_mnist_dir(cfg.path, variant=variant)

    return load


def _cifar10(cfg) -> RawDataset:
    from .cifar import load_cifar10_dir

    if cfg.download:
        from .download import download_dataset

        download_dataset("cifar10", cfg.path)
    return load_cifar10_dir(cfg.path)


def _image_folder(cfg) -> RawDataset:
    from .imagefolder import load_image_folder

    return load_image_folder(cfg.path, image_size=cfg.image_size, grayscale=cfg.grayscale)


def _csv(cfg) -> RawDataset:
    from .csvtable import load_csv

    return load_csv(cfg.path, target=cfg.target, task=cfg.task)


SOURCES: dict[str, DataSource] = {
    s.name: s
    for s in [
        DataSource("digits", lambda c: load_digits(), "8x8 handwritten digits, 10 classes (scikit-learn)"),
        DataSource("iris", lambda c: load_iris(), "iris flowers, 4 features, 3 classes (scikit-learn)"),
        DataSource("wine", lambda c: load_wine(), "wine cultivars, 13 features, 3 classes (scikit-learn)"),
        DataSource("breast_cancer", lambda c: load_breast_cancer(), "tumours, 30 features, 2 classes (scikit-learn)"),
        DataSource("diabetes", lambda c: load_diabetes(), "disease progression, 10 features, regression (scikit-learn)"),
        DataSource("synthetic_classification",
                   lambda c: make_classification(c.n_samples, c.n_features, c.n_classes, c.noise, c.split_seed),
                   "seeded Gaussian clusters (n_samples, n_features, n_classes, noise)"),
        DataSource("synthetic_regression",
                   lambda c: make_regression(c.n_samples, c.n_features, c.noise, c.split_seed),
                   "seeded noisy linear target (n_samples, n_features, noise)"),
        DataSource("mnist", _mnist("mnist"), "MNIST IDX files (plain or .gz) in data.path", True),
        DataSource("fashion_mnist", _mnist("fashion_mnist"), "Fashion-MNIST IDX files in data.path", True),
        DataSource("cifar10", _cifar10, "CIFAR-10 python batches in data.path", True),
        DataSource("image_folder", _image_folder, "one sub-folder of images per class in data.path", True),
        DataSource("csv", _csv, "CSV table(s) in data.path; target column data.target (default: last)", True, True),
    ]
}


def get_source(name: str) -> DataSource:
    if name not in SOURCES:
        raise UserError(f"unknown data set {name!r}; available: {', '.join(SOURCES)}")
    return SOURCES[name]


def load_raw(cfg) -> RawDataset:
    """Load the raw arrays named by a DataConfig."""
    source = get_source(cfg.name)
    if source.needs_path and not cfg.path:
        raise UserError(f"data set {cfg.name!r} reads files: set data.path")
    if len(paths_of(cfg.path)) > 1 and not source.many_paths:
        raise UserError(f"data set {cfg.name!r} reads one data.path, got {len(cfg.path)}; "
                        "a list of files is for data sets text, csv and corpus")
    return source.load(cfg)
