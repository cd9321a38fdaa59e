"""The one training/evaluation loop. Every section (sanity, overfit, LR finder, sweeps, full training,
evaluation) runs its batches through `Engine` and its epochs through `fit`."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


import torch
from torch import nn
from tqdm import tqdm

from csc8607 import STARTED_AT, checkpoint
from csc8607.errors import UserError
from csc8607.metrics import Scores, headline, loss_function, loss_targets
from csc8607.runtime import autocast, rng_state, set_rng_state

log = logging.getLogger(__name__)
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite."""


@dataclass
class EpochProgress:
    """How far a train epoch got: enough to continue it exactly after an interruption."""

    batches_done: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    score_counts: dict[str, Any] = field(default_factory=dict)  # Scores.counts so far


class Interrupted(UserError):
    """SIGINT/SIGTERM arrived; the loop stopped at a batch boundary with `progress` through the epoch."""

    def __init__(self, signal_name: str, progress: EpochProgress) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name, self.progress = signal_name, progress
        self.exit_code = 128 + int(getattr(signal, signal_name))


def preemption_signal() -> signal.Signals:
    """The signal SLURM sends `signal_delay_s` before a job's time limit (`--signal`), on which submitit requeues
    the job: USR2 unless submitit's SUBMITIT_PREEMPT_SIGNAL names another."""
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], str | None]]:
    """While active, SIGINT and SIGTERM (a SLURM time limit) only record their arrival; the loop polls the
    returned function after each step and stops cleanly. So does the preemption signal where a handler awaits it
    (submitit's, in a SLURM job): once the loop has stopped and saved last.ckpt, that handler runs (it requeues
    the job and exits), so the requeued job continues from the very batch it reached. Outside the main thread
    this does nothing."""
    received: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)

    preempt = preemption_signal()
    try:
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        if callable(signal.getsignal(preempt)):
            previous[preempt] = signal.signal(preempt, handler)
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if preempt.name in received and preempt in previous:
            log.warning("%s: training stopped; the job's own handler (submitit's) takes over: it requeues the job",
                        preempt.name)
            previous[preempt](preempt, None)  # type: ignore[operator]


class Engine:
    """How batches go through a model: device, precision, the task's loss and metrics."""

    def __init__(self, task: str, num_classes: int, device: torch.device, precision: str = "32",
                 grad_clip: float | None = None, progress: bool = False, loss: str | None = None) -> None:
        self.task, self.num_classes = task, num_classes
        self.device, self.precision = device, precision
        self.precision_why = "set by the caller"  # run.setup records why auto chose it
        self.compiled, self.compile_why = False, "set by the caller"  # run.setup: whether torch.compile ran, why
        self.grad_clip = grad_clip
        self.progress = progress
        self.loss_fn = loss_function(task, loss)  # meta["loss"]; None: the task's default
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision == "16")
        self.step = 0  # optimizer steps taken, across epochs
        self.first_batch_after_s: float | None = None  # seconds from csc8607's import to the first train batch

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits.float(), loss_targets(labels, self.task))

    def train_step(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                   optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (detached loss, logits)."""
        if self.first_batch_after_s is None:
            self.first_batch_after_s = time.time() - STARTED_AT
        with autocast(self.device, self.precision):
            logits = model(inputs)
        loss = self.loss(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        self.step += 1
        return loss.detach(), logits.detach()

    def _bar(self, batches: Batches, desc: str) -> Batches:
        return tqdm(batches, desc=desc, leave=False, disable=not self.progress, dynamic_ncols=True)

    def train_epoch(self, model: nn.Module, batches: Batches, optimizer: torch.optim.Optimizer,
                    on_step: Callable[[int, float], None] | None = None, log_every: int = 10,
                    progress: EpochProgress | None = None,
                    stop_requested: Callable[[], str | None] | None = None) -> dict[str, float]:
        """One pass over `batches` in train mode; returns mean loss and the task's headline metric (accuracy, or
        RMSE for regression).

        `on_step(step, loss)` is called every `log_every` optimizer steps (the only host syncs of the loop).
        `progress` continues an interrupted epoch (`batches` must then start after its done batches);
        when `stop_requested()` names a signal, raises Interrupted with the progress so far.
        """
        model.train()
        progress = progress or EpochProgress()
        scores = Scores(self.task, self.num_classes, self.device, top5=False)  # the headline metric only
        scores.load(progress.score_counts)
        loss_sum = torch.tensor(progress.loss_sum, device=self.device)
        seen, done = progress.seen, progress.batches_done
        has_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        for inputs, labels in self._bar(batches, "train"):
            done += 1
            if len(labels) < 2 and has_batch_norm:
                continue  # a batch of one cannot be batch-normalized in train mode
            loss, logits = self.train_step(model, inputs, labels, optimizer)
            loss_sum += loss * len(labels)
            seen += len(labels)
            scores.update(logits, labels)
            if on_step is not None and self.step % log_every == 0:
                value = loss.item()
                self._check_finite(value)
                on_step(self.step, value)
            signal_name = stop_requested() if stop_requested is not None else None
            if signal_name:
                state = {k: v.cpu() for k, v in scores.counts.items()}
                raise Interrupted(signal_name, EpochProgress(done, loss_sum.item(), seen, state))
        mean_loss = (loss_sum / max(seen, 1)).item()
        self._check_finite(mean_loss)
        key = headline(self.task)
        return {"loss": mean_loss, key: scores.compute()[key]}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Batches, detailed: bool = False) -> dict[str, Any]:
        """Mean loss and the task's metrics over `batches` in eval mode (`detailed`: per class + confusion)."""
        model.eval()
        scores = Scores(self.task, self.num_classes, self.device)
        loss_sum, seen = torch.zeros((), dtype=torch.float64, device=self.device), 0
        for inputs, labels in self._bar(batches, "eval"):
            with autocast(self.device, self.precision):
                logits = model(inputs)
            loss_sum += self.loss(logits, labels).double() * len(labels)
            seen += len(labels)
            scores.update(logits, labels)
        if seen == 0:
            raise UserError("evaluation got no batches: the split is empty")
        return {"loss": (loss_sum / seen).item(), **scores.compute(detailed)}

    def _check_finite(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"loss became {loss} at step {self.step}: lower optim.lr or set trainer.grad_clip "
                                "(best and last checkpoints are left as they were)")


def is_better(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value > best if mode == "max" else value < best)


def repair_best(ckpt_dir: Path, resume: dict[str, Any]) -> None:
    """A kill between writing last.ckpt and linking it as best.ckpt leaves a best.ckpt one improvement behind the
    best epoch that last.ckpt records; last.ckpt then holds exactly that best epoch's state, so link it again."""
    if resume.get("progress") or resume["best_epoch"] != resume["epoch"]:
        return  # last.ckpt is not the best epoch's state; best.ckpt was linked before any later epoch ran
    best, last = ckpt_dir / "best.ckpt", ckpt_dir / "last.ckpt"
    if best.is_file() and last.is_file() and os.path.samefile(best, last):
        return  # still linked: the same bytes
    if not best.is_file() or checkpoint.load(best).get("epoch") != resume["best_epoch"]:
        log.warning("best.ckpt did not hold the best epoch %d (killed while linking it): relinked from last.ckpt",
                    resume["best_epoch"])
        checkpoint.duplicate(last, best)


def restore(resume: dict[str, Any], engine: Engine, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, train_batches: Any, source: Path | str) -> EpochProgress | None:
    """Load a last.ckpt's states into the run's objects (checkpoint.check_resumable vetted their types); what
    still does not fit them (another optimizer's groups, a scheduler's keys) is one line naming the field."""
    with checkpoint.restoring(source, "model"):
        model.load_state_dict(resume["model"])
    with checkpoint.restoring(source, "optimizer"):
        optimizer.load_state_dict(resume["optimizer"])
    if scheduler is not None and resume.get("scheduler"):
        with checkpoint.restoring(source, "scheduler"):
            scheduler.load_state_dict(resume["scheduler"])
    with checkpoint.restoring(source, "rng"):
        set_rng_state(resume["rng"])
    if not resume.get("progress"):
        return None
    with checkpoint.restoring(source, "progress"):
        progress = EpochProgress(**resume["progress"])
        Scores(engine.task, engine.num_classes, engine.device, top5=False).load(progress.score_counts)
    if hasattr(train_batches, "__len__") and progress.batches_done > len(train_batches):
        raise UserError(f"checkpoint {source}: progress.batches_done={progress.batches_done} is more than the "
                        f"{len(train_batches)} batches of an epoch (damaged or edited): train a new run")
    return progress


def fit(engine: Engine, model: nn.Module, optimizer: torch.optim.Optimizer, train_batches: Any, val_batches: Batches,
        *, max_epochs: int, run_dir: Path | None, monitor: str = "val/accuracy", mode: str = "max", writer: Any = None,
        scheduler: Any = None, log_every: int = 10, checkpoint_extra: dict | None = None,
        resume: dict | None = None, stop: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Train for `max_epochs` (or until `stop(row)` is true after an epoch), evaluating on val after each epoch.

    Writes checkpoints/best.ckpt (by `monitor`) and checkpoints/last.ckpt into `run_dir` after every epoch
    (none when `run_dir` is None),
    scalars into `writer` (a TensorBoard SummaryWriter or None), and returns the history and the best epoch.
    `resume` (a last.ckpt's contents) continues that run exactly: weights, optimizer, scheduler, RNG, and a
    partly done epoch. On SIGINT/SIGTERM, last.ckpt records the partial epoch and Interrupted is raised.
    """
    ckpt_dir = Path(run_dir) / "checkpoints" if run_dir is not None else None
    history: list[dict[str, Any]] = []
    best, best_epoch, done_epochs, progress = None, 0, 0, None
    if resume is not None:
        progress = restore(resume, engine, model, optimizer, scheduler, train_batches,
                           ckpt_dir / "last.ckpt" if ckpt_dir is not None else "resume")
        history, best, best_epoch = list(resume["history"]), resume["best_value"], resume["best_epoch"]
        done_epochs, engine.step = resume["epoch"], resume["step"]
        if ckpt_dir is not None:
            repair_best(ckpt_dir, resume)

    def state(epoch: int, partial: EpochProgress | None = None) -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch, "step": engine.step, "monitor": monitor, "best_value": best,
                "best_epoch": best_epoch, "history": history, "rng": rng_state(),
                "progress": asdict(partial) if partial else None, **(checkpoint_extra or {})}

    on_step = (lambda step, loss: writer.add_scalar("train/loss_step", loss, step)) if writer else None
    start = time.perf_counter()
    with stop_on_signals() as stop_requested:
        for epoch in range(done_epochs + 1, max_epochs + 1):
            if hasattr(train_batches, "set_epoch"):
                train_batches.set_epoch(epoch)
            if progress is not None and hasattr(train_batches, "skip"):
                train_batches.skip(progress.batches_done)
            epoch_start = time.perf_counter()
            try:
                train = engine.train_epoch(model, train_batches, optimizer, on_step=on_step, log_every=log_every,
                                           progress=progress, stop_requested=stop_requested)
            except Interrupted as interrupted:
                if ckpt_dir is not None:
                    checkpoint.save(ckpt_dir / "last.ckpt", state(epoch - 1, interrupted.progress))
                    log.warning("%s in epoch %d after batch %d (step %d): last.ckpt saved", interrupted.signal_name,
                                epoch, interrupted.progress.batches_done, engine.step)
                raise
            progress = None
            val = engine.evaluate(model, val_batches)
            lr = optimizer.param_groups[0]["lr"]
            row = {"epoch": epoch, "step": engine.step, "lr": lr, "epoch_time_s": time.perf_counter() - epoch_start}
            row.update({f"train/{k}": v for k, v in train.items()})
            row.update({f"val/{k}": v for k, v in val.items()})
            if monitor not in row:
                raise UserError(f"trainer.monitor={monitor} is not a logged metric (choose from "
                                f"{', '.join(k for k in row if '/' in k)})")
            history.append(row)
            improved = is_better(row[monitor], best, mode)
            if improved:
                best, best_epoch = row[monitor], epoch
            if scheduler is not None:
                scheduler.step()
            if ckpt_dir is not None:
                checkpoint.save(ckpt_dir / "last.ckpt", state(epoch))
                if improved:  # the same bytes: linked (or copied), not serialized twice
                    checkpoint.duplicate(ckpt_dir / "last.ckpt", ckpt_dir / "best.ckpt")
            if writer is not None:
                for key, value in row.items():
                    if "/" in key:
                        writer.add_scalar(key, value, epoch)
                writer.add_scalar("lr", lr, epoch)
            monitored = "" if monitor in ("train/loss", "val/loss") else f"  {monitor} {row[monitor]:.4f}"
            log.info("epoch %d/%d  train/loss %.4f  val/loss %.4f%s%s  (%.1fs)", epoch, max_epochs, train["loss"],
                     val["loss"], monitored, "  *best*" if improved else "", row["epoch_time_s"])
            if stop is not None and stop(row):
                break
    return {"history": history, "best_value": best, "best_epoch": best_epoch,
            "train_time_s": time.perf_counter() - start}
