"""Models are built from the data's meta: `instantiate(cfg.model, input_shape=..., num_outputs=...)`."""
from csc8607.models.cnn import ConvNet, count_parameters
from csc8607.models.cnn1d import ConvNet1d
from csc8607.models.text import TextCNN, TextRNN

__all__ = ["ConvNet", "ConvNet1d", "TextCNN", "TextRNN", "count_parameters"]
