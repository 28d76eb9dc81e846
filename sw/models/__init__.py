"""Model definitions (LeNet-5, the paper's ResNet-18) and user factories by import path. Imports torch only."""
from sw.models.zoo import MODELS, build_model, count_parameters, load_weights

__all__ = ["MODELS", "build_model", "count_parameters", "load_weights"]
