"""The course report (template headings, order and language kept) filled from the runs' JSON files and figures.

The template is split at its `##`/`###` headings. A heading with a renderer (csc8607.report_sections.BODIES) gets
that text instead of the template's blank form; every question line (D1–D11, M0–M9) is kept verbatim, followed by
its measured answer (ANSWERS) and a marked placeholder for the student's own commentary. Other headings are kept.
"""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf

from csc8607 import axes, checkpoint
from csc8607.report_runs import HINTS, RESULTS

TODO = "> _À compléter par l'étudiant·e : …_"
GENERATED = ("> _Rapport généré par `python report.py` à partir des runs (chiffres et figures) ; les parties "
             "« À compléter » sont à rédiger._")
QUESTION = re.compile(r"^\*\*([DM]\d+)\.\*\*")


def fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


class Context:
    """The runs found, their JSON loaded on demand, and the figures copied into the report's folder."""

    def __init__(self, runs: dict[str, Path], root: Path, out: Path) -> None:
        self.runs, self.root, self.out, self.figures = runs, root, out, out / "figures"
        self.memos: dict[Any, Any] = {}

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()` once per report: several sections quote the same files (renderers never modify them)."""
        if key not in self.memos:
            self.memos[key] = compute()
        return self.memos[key]

    def json(self, preset: str) -> Any:
        return self.memo(("json", preset), lambda: checkpoint.read_json(self.runs[preset] / RESULTS[preset]))

    def config(self, preset: str) -> Any:
        return self.memo(("config", preset), lambda: OmegaConf.load(self.runs[preset] / ".hydra" / "config.yaml"))

    def choice(self, preset: str, group: str) -> str:
        """The config group option a run was composed with (e.g. its `data=`), from its .hydra/hydra.yaml."""
        hydra = self.memo(("hydra", preset), lambda: OmegaConf.load(self.runs[preset] / ".hydra" / "hydra.yaml"))
        return str(hydra.hydra.runtime.choices[group])

    def figure(self, preset: str, name: str, caption: str) -> str:
        """Copy a run's PNG to figures/<preset>_<name> (atomically); the Markdown image linking it."""
        target = self.figures / f"{preset}_{name}"
        with checkpoint.atomic(target) as tmp:
            shutil.copyfile(self.runs[preset] / name, tmp)
        return f"![{caption}](figures/{target.name})"

    def missing(self, *presets: str) -> str | None:
        hints = dict(HINTS)
        if "grid" in self.runs:  # compare the grid that is there
            hints["compare"] = f"python train.py experiment=compare compare.runs={self.rel(self.runs['grid'])}"
        return "\n".join(f"_Aucun run : `{hints[p]}`_" for p in presets if p not in self.runs) or None

    def rel(self, path: str | Path) -> str:
        """`path` relative to the project root when it lies below it (as the commands are written)."""
        path, root = Path(path), self.root
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; a `|` inside a cell (an error message) becomes `/` so that it cannot split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(fmt(c).replace("|", "/") for c in row) + " |" for row in rows])


def sweep_rows(c: Context, preset: str) -> list[dict[str, str]]:
    """The rows of a sweep's summary.csv (best first, failed jobs last)."""
    with open(c.runs[preset] / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def sweep_table(c: Context, preset: str) -> str:
    """A sweep's summary as the template's grid table (one row per job)."""
    rows = sweep_rows(c, preset)
    job = sweep_job_config(c, preset)
    body = [[r["run"], r["lr"], r["wd"], r.get("A", ""), r.get("B", ""), r.get("params", ""),
             r["val_metric"] and f"{float(r['val_metric']):.4f}", r["val_loss"] and f"{float(r['val_loss']):.4f}",
             f"meilleure époque {r['best_epoch']}" if r["status"] == "ok" else f"échec : {r['error']}"] for r in rows]
    return table(["Run (nom explicite)", "LR", "WD", f"Hyp-{axes.label(job, 'A')}", f"Hyp-{axes.label(job, 'B')}",
                  "#Paramètres", f"Val metric (nom={job.trainer.monitor})", "Val loss", "Notes"], body)


def sweep_job_config(c: Context, preset: str) -> Any:
    """The config of a sweep's first job (its model's axes, its monitor, its epochs)."""
    return c.memo(("job", preset), lambda: OmegaConf.load(next(c.runs[preset].glob("*/.hydra/config.yaml"))))


Renderer = tuple[tuple[str, ...], Callable[[Context], str]]


def fill(c: Context, renderer: Renderer) -> str:
    needed, render = renderer
    return c.missing(*needed) or render(c)


def render(template: str, c: Context, bodies: dict[str, Renderer], answers: dict[str, Renderer]) -> str:
    """The report: the template's preamble, then each heading with its body (`bodies`, by heading number) and
    its questions, each followed by its answer (`answers`, by question id) and the student's placeholder."""
    parts = re.split(r"^(#{2,3} .*)$", template, flags=re.M)
    title, _, rest = parts[0].partition("\n")
    out = [f"{title}\n\n{GENERATED}\n{rest}"]
    for heading, body in zip(parts[1::2], parts[2::2]):
        number = heading.lstrip("#").split()[0]
        lines = body.strip("\n").splitlines()
        ends_rule = bool(lines) and lines[-1].strip() == "---"
        questions: list[list[str]] = []
        for line in lines:
            if QUESTION.match(line):
                questions.append([line])
            elif questions and line.strip() and not line.lstrip().startswith(("-", "|", ">", "_", "#", "`")) \
                    and len(questions[-1]) == 1 and not questions[-1][0].rstrip().endswith("**"):
                questions[-1].append(line)  # a question's second line (M1)
        kept = body.strip().removesuffix("---").rstrip()
        text = fill(c, bodies[number]) if number in bodies else kept + (f"\n\n{TODO}" if kept else "")
        for q in questions:
            qid = QUESTION.match(q[0]).group(1)
            answer = fill(c, answers[qid]) if qid in answers else ""
            text += "\n\n" + "\n".join(q) + ("\n\n" + answer if answer else "") + f"\n\n{TODO}"
        text = f"{text.strip()}\n\n" if text.strip() else ""
        out.append(f"{heading}\n\n{text}" + ("---\n\n" if ends_rule else ""))
    return "".join(out).rstrip() + "\n"
