"""Models are built from the data's meta: `instantiate(cfg.model, input_shape=..., num_outputs=...)`."""
from csc8607.models.cnn import ConvNet, count_parameters
from csc8607.models.cnn1d import ConvNet1d

__all__ = ["ConvNet", "ConvNet1d", "count_parameters"]
