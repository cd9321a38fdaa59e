"""TensorBoard: one event directory per run, HParams written into that same run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary


def open_writer(run_dir: Path | str, sub: str | None = None) -> SummaryWriter:
    """Events in <run_dir>/tb, or in <run_dir>/tb/<sub> (several curves of one job shown as separate runs)."""
    return SummaryWriter(log_dir=str(Path(run_dir) / "tb" / sub if sub else Path(run_dir) / "tb"))


def write_hparams(writer: SummaryWriter, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """Add this run to the HParams dashboard: the flattened hyperparameters and its metric values.

    Unlike SummaryWriter.add_hparams, this writes into the run's own event directory (no timestamped
    sub-run), so the table row and the run's scalars are one run in TensorBoard.
    """
    hparams = {k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str))}
    metrics = {k: float(v) for k, v in metrics.items() if v is not None}
    experiment, session_start, session_end = hparams_summary(hparams, metrics)
    writer.file_writer.add_summary(experiment)
    writer.file_writer.add_summary(session_start)
    writer.file_writer.add_summary(session_end)
    for key, value in metrics.items():
        writer.add_scalar(key, value)
    writer.flush()
