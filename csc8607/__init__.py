"""csc8607: one engine and one Hydra preset per section of the CSC8607 course report."""

import time

__version__ = "0.1.0"
STARTED_AT = time.time()  # when csc8607 was first imported: train.py/evaluate.py import it before anything heavy

from csc8607 import axes  # noqa: E402,F401  (registers ${model_axes:}, used in the sweep presets' run names)
from csc8607 import rundir  # noqa: E402,F401  (registers ${pending_record:}, Hydra's output_subdir)
