"""Datasets: registry, file-format readers, splits and transfer sets."""

from shallowcert.data.registry import DATASETS, Dataset, data_dir_for, dataset_info, files_found, load_dataset
from shallowcert.data.split import Split, to_float

__all__ = ["DATASETS", "Dataset", "Split", "data_dir_for", "dataset_info", "files_found", "load_dataset", "to_float"]
