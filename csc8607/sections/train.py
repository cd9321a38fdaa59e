"""M6 — full training: fit with best/last checkpoints, the best checkpoint on test, metrics.json, HParams."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from csc8607 import checkpoint, runtime
from csc8607.config import command_line_overrides, flatten, monitor_mode, plain, with_overrides
from csc8607.engine import Interrupted, fit
from csc8607.errors import UserError
from csc8607.models import count_parameters
from csc8607.run import check_matches, check_same_split, check_same_vocabulary, run_name, setup
from csc8607.rundir import held_state
from csc8607.tb import open_writer, write_hparams

log = logging.getLogger(__name__)


def resume_point(cfg: DictConfig) -> tuple[DictConfig, Path, dict]:
    """`resume=<job dir or last.ckpt>`: the saved config (plus this command's overrides), its job dir, its state.

    Only a run's own checkpoints/last.ckpt continues it: an exported or best checkpoint is not a run (resuming it
    would write into whatever dir holds it, or roll the run back and lose its later epochs)."""
    path = Path(str(cfg.resume)).expanduser()
    ckpt = (path / "checkpoints" / "last.ckpt" if path.is_dir() else path).absolute()
    state = checkpoint.load(ckpt)
    checkpoint.check_fields(state, ckpt)
    run_dir = ckpt.parent.parent  # the dir the checkpoint is in, not where a link points: that run continues
    if ckpt.name != "last.ckpt" or ckpt.parent.name != "checkpoints" or not (run_dir / ".hydra").is_dir():
        raise UserError(f"resume={cfg.resume}: not a run's checkpoints/last.ckpt; resume takes a run dir (or its "
                        "last.ckpt). An exported or best checkpoint is not a run: evaluate it with evaluate.py, or "
                        "train a new run")
    if ckpt.is_symlink() or ckpt.parent.is_symlink() or (run_dir / "tb").is_symlink():
        raise UserError(f"resume={cfg.resume}: {ckpt} is a symbolic link; resume continues the run whose dir holds "
                        "the checkpoint itself")
    checkpoint.check_resumable(state, ckpt)
    overrides = command_line_overrides()
    saved = with_overrides(state["config"], cfg, overrides, skip=("resume",), source=f"checkpoint {ckpt}")
    check_same_split(state["config"], saved, "resume= continues on")
    if any(o.split("=", 1)[0].lstrip("+") in ("experiment", "section") for o in overrides) \
            and cfg.get("section") != state["config"].get("section"):
        raise UserError(f"resume={cfg.resume} continues a `{state['config'].get('section') or 'train'}` run; "
                        f"section={cfg.get('section')} runs in a new dir: drop resume=")
    result = "full.json" if saved.get("section") == "full" else "metrics.json"
    if (run_dir / result).exists() and not state.get("progress") and state["epoch"] >= saved.trainer.max_epochs:
        raise UserError(f"resume={cfg.resume}: the run already finished its {state['epoch']} epochs, nothing to "
                        f"resume (give trainer.max_epochs > {state['epoch']} to train it longer)")
    saved.resume = str(ckpt)
    saved.run_name = saved.get("run_name") or state.get("run_name")
    return saved, run_dir, state


def run(cfg: DictConfig, run_dir: Path | str) -> float:
    """Train, keep best/last checkpoints, evaluate best on test, write metrics.json; return the monitored value.

    With `resume=...` the run continues in its own job dir, exactly where its last.ckpt stopped.
    """
    run_dir = Path(run_dir)
    wall_start = time.perf_counter()
    resume = None
    found = None if cfg.get("resume") else held_state(run_dir)  # run_section's claim refused any other case
    if found == "finished":
        summary = checkpoint.read_json(run_dir / "metrics.json")
        log.info("skip_finished: %s already finished (%s %.4f)", run_dir, summary["monitor"], summary["best_value"])
        return float(summary["best_value"])
    if found == "interrupted":
        cfg.resume = str(run_dir)
    if cfg.get("resume"):
        cfg, run_dir, resume = resume_point(cfg)
        partial = (resume.get("progress") or {}).get("batches_done")
        log.info("resuming %s after epoch %d%s (step %d)", run_dir, resume["epoch"],
                 f" and {partial} batches of epoch {resume['epoch'] + 1}" if partial else "", resume["step"])
    s = setup(cfg)
    if resume is not None:
        check_same_vocabulary(resume.get("meta") or {}, s.data.meta, run_dir / "checkpoints" / "last.ckpt")
        check_matches(resume, s.model, run_dir / "checkpoints" / "last.ckpt", cfg)
    meta, trainer = s.data.meta, cfg.trainer
    params = count_parameters(s.model)
    log.info("data %s %s  model %s (%s parameters)  device %s precision %s", meta["name"], meta["split_sizes"],
             type(s.model).__name__, f"{params:,}", s.engine.device, s.engine.precision)
    optimizer = s.optimizer()
    scheduler = s.scheduler(optimizer)
    versions = {**runtime.library_versions(), **runtime.git_state(cfg.paths.root)}  # + the launch dir's commit
    extra = {"config": plain(cfg), "meta": meta, "versions": versions, "run_name": run_name(cfg)}
    writer = open_writer(run_dir)
    try:
        result = fit(s.engine, s.model, optimizer, s.loader("train", train=True), s.loader("val"),
                     max_epochs=trainer.max_epochs, run_dir=run_dir, monitor=trainer.monitor,
                     mode=monitor_mode(trainer), writer=writer, scheduler=scheduler,
                     log_every=trainer.log_every_n_steps, checkpoint_extra=extra, resume=resume)
        final = result["history"][-1]
        best_epoch = result["best_epoch"]
        best_row = result["history"][best_epoch - 1]
        test = None
        if trainer.test_after_fit:
            s.model.load_state_dict(checkpoint.load(run_dir / "checkpoints" / "best.ckpt")["model"])
            test = s.engine.evaluate(s.model, s.loader("test"))
            for key, value in test.items():
                writer.add_scalar(f"test/{key}", value, best_epoch)
        summary = {
            "run_name": extra["run_name"],
            "monitor": trainer.monitor,
            "best_value": result["best_value"],
            "best_epoch": result["best_epoch"],
            "best": {k: v for k, v in best_row.items() if "/" in k},
            "final": {k: v for k, v in final.items() if "/" in k},
            "test": test,
            "params": params,
            "epochs": trainer.max_epochs,
            "train_time_s": result["train_time_s"],
            "wall_time_s": time.perf_counter() - wall_start,
            # script start (csc8607's first import) -> first train batch: the start-up cost, imports included
            # (in a multirun launched in one process, earlier jobs too)
            "first_batch_after_s": s.engine.first_batch_after_s,
            "device": str(s.engine.device),
            "precision": s.engine.precision,
            "precision_why": s.engine.precision_why,  # auto's choice and its reason, or "set by trainer.precision"
            "compile": s.engine.compiled,  # torch.compile of the model (trainer.compile)
            "compile_why": s.engine.compile_why,
            "meta": meta,
            "versions": extra["versions"],
            "history": result["history"],
        }
        checkpoint.write_json(run_dir / "metrics.json", summary)
        hp_metrics = {f"hparam/best_{k.replace('/', '_')}": v for k, v in summary["best"].items()}
        hp_metrics.update({f"hparam/final_{k.replace('/', '_')}": v for k, v in summary["final"].items()})
        write_hparams(writer, {**flatten(cfg), "run_name": extra["run_name"]}, hp_metrics)
    except Interrupted as stop:
        stop.args = (f"interrupted by {stop.signal_name}: last.ckpt saved; continue with "
                     f"`python train.py resume={run_dir}`",)
        raise
    finally:
        writer.close()
    tested = "" if test is None else "; test " + ", ".join(f"{k} {v:.4f}" for k, v in test.items())
    log.info("best %s %.4f at epoch %d%s; %s", trainer.monitor, result["best_value"], result["best_epoch"], tested,
             run_dir)  # no test part when trainer.test_after_fit=false
    return float(result["best_value"])
