"""Models are built from the data's meta (csc8607.models.build: the contract a model's constructor follows)."""
from csc8607.models.build import build_model, count_parameters
from csc8607.models.cnn import ConvNet
from csc8607.models.cnn1d import ConvNet1d
from csc8607.models.resnet import ResNet
from csc8607.models.text import TextCNN, TextRNN

__all__ = ["ConvNet", "ConvNet1d", "ResNet", "TextCNN", "TextRNN", "build_model", "count_parameters"]
