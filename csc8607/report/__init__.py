"""The course report (template headings, order and language kept) filled from the runs' JSON files and figures.

The template is split at its `##`/`###` headings. A heading with a renderer (report.answers.BODIES) gets
that text instead of the template's blank form; every question line (D1–D11, M0–M9) is kept verbatim, followed by
its measured answer (ANSWERS) and a marked placeholder for the student's own commentary. Other headings are kept.
The package's modules: which run feeds which section (runs), section 1 (data), section 2 (model), the other bodies
and the answers (answers), M8 from the Optuna study (optuna), report.py's writing (write), `make report` (pipeline).
"""
from __future__ import annotations

import csv
import math
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from csc8607 import axes, checkpoint
from csc8607.report.runs import HINTS, RESULTS, command
from csc8607.sections import BY_NAME

TODO = "> _À compléter par l'étudiant·e : …_"
GENERATED = ("> _Rapport généré par `python report.py` à partir des runs (chiffres et figures) ; les parties "
             "« À compléter » sont à rédiger._")
QUESTION = re.compile(r"^\*\*([DM]\d+)\.\*\*")
UNREADABLE_SECTION = "Section non générée"  # what a section unreadable from its files says
UNREADABLE = (OSError, ValueError, OmegaConfBaseException, yaml.YAMLError)  # a file missing, cut short or garbled


class ReportInputError(Exception):
    """A file a section reads is missing, empty or corrupt (the message names it)."""


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text and isinstance(err, ReportInputError) else \
        f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def fmt(value: Any, digits: int = 4) -> str:
    """A value as it is typed in a config or a command (`0.003`, `1e-05`): for code spans."""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


NNBSP = "\u202f"  # French thousands separator: a narrow no-break space


def num(value: Any, digits: int = 4) -> str:
    """A number as French prose writes it: `1 257` (grouped thousands), `0,3063` (decimal comma, `digits`
    significant digits), `oui`/`non` for a flag; anything else as it is."""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", NNBSP)
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    if value != value or abs(value) == float("inf"):  # nan: no value; ±inf as written
        return "—" if value != value else ("−∞" if value < 0 else "∞")
    text = f"{value:,.0f}" if abs(value) >= 10 ** digits else f"{value:,.{digits}g}"
    return text.replace(",", NNBSP).replace(".", ",")


def fixed(value: Any, decimals: int = 4) -> str:
    """A score in a table column: always `decimals` decimals (`0,8000` beside `0,9444`), else as num()."""
    return f"{value:.{decimals}f}".replace(".", ",") if isinstance(value, float) and math.isfinite(value) else num(value)


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 époque`, `2 époques`: the count and the noun agreeing with it (French: plural from 2)."""
    return f"{num(count)} {word if abs(count) < 2 else words or word + 's'}"


def prose(value: Any, names: dict[str, str] | None = None) -> str:
    """A recorded value (list, dict, flag, number) as French prose, never a Python repr: lists joined by commas
    (the first 12), dicts as `clé : valeur` (keys through `names`)."""
    names = names or {}
    if isinstance(value, dict):  # a nested dict in parentheses: `train (coupés : 3, complétés : 0) ; val (…)`
        return " ; ".join(f"{names.get(k, k)} ({prose(v, names).replace(' ; ', ', ')})" if isinstance(v, dict) else
                          f"{names.get(k, k)} : {prose(v, names)}" for k, v in value.items()) or "aucun"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(prose(v, names) for v in value[:12])
        return (shown + (f", … ({num(len(value))} en tout)" if len(value) > 12 else "")) or "aucun"
    return num(value)


class Context:
    """The runs found, their JSON loaded on demand, and the figures copied into the report's folder."""

    def __init__(self, runs: dict[str, Path], root: Path, out: Path, left_out: list[str] | None = None) -> None:
        self.runs, self.root, self.out, self.figures = runs, root, out, out / "figures"
        self.left_out = left_out or []  # latest runs not used because they are on other data (runs.one_dataset)
        self.memos: dict[Any, Any] = {}
        self.written: set[str] = set()  # the figures this report wrote in figures/ (see write.prune_figures)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()` once per report: several sections quote the same files (renderers never modify them)."""
        if key not in self.memos:
            self.memos[key] = compute()
        return self.memos[key]

    def read(self, path: Path, load: Callable[[Path], Any]) -> Any:
        """`load(path)`; a missing, empty or corrupt file raises ReportInputError naming it."""
        try:
            data = load(path)
        except FileNotFoundError:
            raise ReportInputError(f"`{self.rel(path)}` manque") from None
        except UNREADABLE as err:
            raise ReportInputError(f"`{self.rel(path)}` est illisible ({first_line(err)})") from None
        if data is None:
            raise ReportInputError(f"`{self.rel(path)}` est vide")
        return data

    def json(self, preset: str) -> Any:
        path = self.runs[preset] / RESULTS[preset]
        return self.memo(("json", preset), lambda: self.read(path, checkpoint.read_json))

    def config(self, preset: str) -> Any:
        """The config the run trained with: its own config.yaml where it wrote one (M6 from a sweep's winner),
        else the one it was launched with."""
        path = self.runs[preset] / "config.yaml"
        path = path if path.is_file() else self.runs[preset] / ".hydra" / "config.yaml"
        return self.memo(("config", preset), lambda: self.read(path, OmegaConf.load))

    def choice(self, preset: str, group: str) -> str:
        """The config group option a run was composed with (e.g. its `data=`), from its .hydra/hydra.yaml."""
        path = self.runs[preset] / ".hydra" / "hydra.yaml"
        hydra = self.memo(("hydra", preset), lambda: self.read(path, OmegaConf.load))
        return str(hydra.hydra.runtime.choices[group])

    def unreadable(self, presets: tuple[str, ...], err: BaseException) -> str:
        """What a section says when a file it reads is corrupt, empty or gone, and the commands that remake it."""
        redo = [self.remake(p) for p in presets] if presets else ["python report.py"]
        return f"_{UNREADABLE_SECTION} : {first_line(err)} ; à refaire : {' puis '.join(f'`{r}`' for r in redo)}_"

    def remake(self, preset: str) -> str:
        """The command that made the run of `preset` (from its records), else the preset's usual command."""
        try:
            return command(self.runs[preset], preset) if preset in self.runs else HINTS[preset]
        except (*UNREADABLE, ReportInputError):
            return HINTS[preset]

    def figure_path(self, name: str) -> Path:
        """Where the report writes a figure of its own, recorded as written by it."""
        self.written.add(name)
        return self.figures / name

    def figure(self, preset: str, name: str, caption: str) -> str:
        """Copy a run's PNG to figures/<preset>_<name> (atomically); the Markdown image linking it."""
        target = self.figure_path(f"{preset}_{name}")
        with checkpoint.atomic(target) as tmp:
            self.read(self.runs[preset] / name, lambda path: shutil.copyfile(path, tmp))
        return f"![{caption}](figures/{target.name})"

    def missing(self, *presets: str) -> str | None:
        return "\n".join(f"_Aucun run : `{self.hint(p)}`_" for p in presets if p not in self.runs) or None

    def hint(self, preset: str) -> str:
        """The usual command making `preset`, given the earlier runs here that it takes (Section.after: M5 this
        M4's LR, M6 and M7 this M5 sweep)."""
        section = BY_NAME[preset]
        fed = [f"{key}={self.rel(self.runs[name])}" for key, name in section.takes if name in self.runs]
        return " ".join([f"python {section.script} experiment={preset}", *fed]) if fed else HINTS[preset]

    def rel(self, path: str | Path) -> str:
        """`path` relative to the project root when it lies below it (as the commands are written)."""
        path, root = Path(path), self.root
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; a `|` inside a cell (an error message) becomes `/` so that it cannot split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(num(c).replace("|", "/") for c in row) + " |" for row in rows])


def number(text: str) -> Any:
    """A summary.csv cell as the number it holds (a table writes it the French way: `0,003`), else as it is."""
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text


def sweep_rows(c: Context, preset: str) -> list[dict[str, str]]:
    """The rows of a sweep's summary.csv (best first, failed jobs last)."""
    with open(c.runs[preset] / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def sweep_table(c: Context, preset: str) -> str:
    """A sweep's summary as the template's grid table (one row per job)."""
    rows = sweep_rows(c, preset)
    job = sweep_job_config(c, preset)
    body = [[r["run"], number(r["lr"]), number(r["wd"]), number(r.get("A", "")), number(r.get("B", "")),
             int(r["params"]) if r.get("params") else "", fixed(number(r["val_metric"])), fixed(number(r["val_loss"])),
             f"meilleure époque {r['best_epoch']}" if r["status"] == "ok" else f"échec : {r['error']}"] for r in rows]
    return table(["Run (nom explicite)", "LR", "WD", f"Hyp-{axes.label(job, 'A')}", f"Hyp-{axes.label(job, 'B')}",
                  "#Paramètres", f"Val metric (nom={sweep_monitor(c, preset)})", "Val loss", "Notes"], body)


def sweep_monitor(c: Context, preset: str) -> str:
    """The metric a sweep's jobs were ranked by: what their metrics.json says (their config may say `auto`)."""
    for path in sorted(c.runs[preset].glob("*/metrics.json")):
        return str(c.read(path, checkpoint.read_json)["monitor"])
    return str(sweep_job_config(c, preset).trainer.monitor)


def sweep_job_config(c: Context, preset: str) -> Any:
    """The config of a sweep's first job (its model's axes, its monitor, its epochs)."""
    return c.memo(("job", preset), lambda: OmegaConf.load(next(c.runs[preset].glob("*/.hydra/config.yaml"))))


Renderer = tuple[tuple[str, ...], Callable[[Context], str]]


def fill(c: Context, renderer: Renderer) -> str:
    """A section's text; when one of its files is corrupt, empty or gone (deleted while the report reads it), a
    line saying so and how to remake it: the rest of the report is still written."""
    needed, render = renderer
    try:
        return c.missing(*needed) or render(c)
    except (*UNREADABLE, ReportInputError, KeyError, IndexError, TypeError, StopIteration) as err:
        return c.unreadable(needed, err)


def render(template: str, c: Context, bodies: dict[str, Renderer], answers: dict[str, Renderer]) -> str:
    """The report: the template's preamble, then each heading with its body (`bodies`, by heading number) and
    its questions, each followed by its answer (`answers`, by question id) and the student's placeholder."""
    parts = re.split(r"^(#{2,3} .*)$", template, flags=re.M)
    title, _, rest = parts[0].partition("\n")
    left_out = "".join(f"> _Run laissé de côté — {note}._\n" for note in c.left_out)
    out = [f"{title}\n\n{GENERATED}\n{left_out}{rest}"]
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
