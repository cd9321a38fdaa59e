"""Models are built from the data's meta: `instantiate(cfg.model, input_shape=..., num_outputs=...)`."""
from csc8607.models.cnn import ConvNet, count_parameters

__all__ = ["ConvNet", "count_parameters"]
