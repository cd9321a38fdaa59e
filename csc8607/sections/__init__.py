"""One small module per section of the course report, each running the shared engine, and the one list of what
each section is (SECTIONS, in the report's order): report/, report.py and `make report` read it.

`section` in the config names the job `train.py` runs; each train.py section here has a module of its name with
`run(cfg, run_dir)`. The list lives here, not in the section modules, so that reading it imports no torch.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csc8607.config import check_added_keys, check_sweep_direction, check_trainer_keys, command_line_overrides, validate
from csc8607.errors import UserError


@dataclass(frozen=True)
class Section:
    """A job and what the report takes from it. A new section: its entry here, its module csc8607/sections/<name>.py,
    its preset conf/experiment/<name>.yaml, its part of conf/report_template.md and its renderer (report/answers)."""

    name: str  # `section=`/`experiment=` name, the `runs.<name>` key of report.py
    result: str | None = None  # the file a finished run holds (a sweep: its sweep dir); None: not in the report
    figures: tuple[str, ...] = ()  # the PNGs its run writes beside `result` (glob patterns)
    answers: tuple[str, ...] = ()  # the template headings and questions its run answers
    sweep: bool = False  # a run of it is a sweep dir; each job records its failure instead of ending the sweep
    model: bool = False  # its run is about a model too: the model, not only the data, tells its experiments apart
    resumable: bool = False  # a training run (sections/train.py): `skip_finished=true` keeps a finished one
    after: tuple[str, ...] = ()  # `key=<section>`: `make report` passes that earlier section's run dir as `key`
    hint: str = ""  # the command that makes a run of it; "" = `python train.py experiment=<name>`
    script: str = "train.py"  # the entry point that runs it

    @property
    def command(self) -> str:
        return self.hint or f"python {self.script} experiment={self.name}"

    @property
    def takes(self) -> list[tuple[str, str]]:
        """(config key, earlier section) of each run it takes (`after`)."""
        return [(key, name) for key, name in (a.split("=", 1) for a in self.after)]

    @property
    def questions(self) -> tuple[str, ...]:
        """The template's questions (D1, M0, ...) among what it answers; the others are headings (1.1, 4))."""
        return tuple(a for a in self.answers if a[0] in "DM")


SECTIONS: tuple[Section, ...] = (  # the report's order; `train` is the plain training job, not a report section
    Section("train", resumable=True),
    Section("data", "data.json", ("class_distribution.png", "examples.png"),
            ("1.1", "1.2", "1.3", "1.4", *(f"D{i}" for i in range(1, 12)))),
    Section("baselines", "baselines.json", ("baselines.png",), ("M0",)),
    Section("sanity", "sanity.json", ("grad_norms.png",), ("2.2", "2.3", "M1", "M2"), model=True),
    Section("overfit", "overfit.json", ("overfit_loss.png",), ("3)", "M3"), model=True,
            hint="python train.py experiment=overfit overfit.num_samples=32"),
    Section("lr_finder", "lr_finder.json", ("lr_finder.png",), ("4)", "M4"), model=True),
    Section("grid", "summary.csv", (), ("5)", "M5"), sweep=True, model=True, resumable=True,
            after=("grid.lr_from=lr_finder",)),
    Section("full", "full.json", ("curves.png",), ("6)", "M6"), model=True, resumable=True,
            after=("full.from_sweep=grid",)),
    Section("compare", "compare.json", ("compare_*.png",), ("7)", "M7"), model=True, after=("compare.runs=grid",),
            hint="python train.py experiment=compare compare.runs=multirun/DATE/TIME"),
    Section("optuna", "summary.csv", (), ("8)", "M8"), sweep=True, model=True, resumable=True),
    Section("evaluate", "test_metrics.json", (), ("9)", "M9"), model=True,
            hint="python evaluate.py ckpt=artifacts/best.ckpt", script="evaluate.py"),
)
BY_NAME = {section.name: section for section in SECTIONS}
JOBS = {section.name for section in SECTIONS if section.script == "train.py"}  # what `section=` accepts
REPORTED = tuple(section for section in SECTIONS if section.result)  # the report's sections, in order


def run_section(cfg: DictConfig, run_dir: Path | str) -> Any:
    """Run the section the config names (default `train`); its return value goes to Hydra's sweeper."""
    check_trainer_keys(cfg.trainer)  # this command's keys; a resumed run's saved config is not re-judged
    check_added_keys(cfg, command_line_overrides())
    check_sweep_direction(cfg)
    if cfg.get("resume"):
        from csc8607.sections.train import resume_point

        # the run continues in its own job dir with its saved config: its own section (full, grid, ...) runs
        cfg, run_dir, _ = resume_point(cfg)
    name = cfg.get("section") or "train"
    if name not in JOBS:
        raise UserError(f"section={name} is not one of {', '.join(sorted(JOBS))}")
    if not BY_NAME[name].sweep:
        validate(cfg)  # bad values fail here, before the heavy imports (sweep jobs validate inside their guard)
    from csc8607.rundir import claim

    with claim(cfg, run_dir, name):  # refused if the dir holds another run or another process writes into it
        return importlib.import_module(f"csc8607.sections.{name}").run(cfg, run_dir)
