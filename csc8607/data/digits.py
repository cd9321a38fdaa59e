"""scikit-learn's bundled 8x8 handwritten digits: the offline default dataset."""
from __future__ import annotations

import numpy as np
import torch

from csc8607.data.core import SourceData
from csc8607.data.split import Split


def load_digits() -> SourceData:
    """1,797 grey 8x8 images (pixel values 0..16 rescaled to 0..255), 10 classes; a single pool to split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    return SourceData(
        splits={"train": Split(torch.from_numpy(images), torch.from_numpy(labels))},
        class_names=[str(d) for d in range(10)],
        name="digits",
        source="scikit-learn load_digits (chiffres manuscrits 8 × 8 de l'UCI)",  # report D1: in its language
        notes={"pixel_range": "0 à 16 dans la source, ramenés à 0 à 255"},  # report D5: in its language
        pool=True,
    )
