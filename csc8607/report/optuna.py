"""M8 from the Optuna study itself: every trial of every run that added to it, read from its storage.

The study is found from a trial's recorded config (`hydra.sweeper.storage` and `study_name`; a relative sqlite path
is taken from the directory the sweep ran in, then from the report's root) and read with optuna's API. The sweep
dirs of the same study are the runs that resumed it. When the storage cannot be read, the section says why and
shows the latest sweep's summary table instead.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csc8607 import figures
from csc8607.report import Context, fixed, fmt, num, plural, sweep_monitor, sweep_table, table
from csc8607.report.runs import command

STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING")  # always counted; any other state is counted when present
STATE_NAMES = {"COMPLETE": "terminés", "FAIL": "en échec", "PRUNED": "élagués", "RUNNING": "en cours",
               "WAITING": "en attente"}


@dataclass(frozen=True)
class Where:
    """A study's storage URL (a sqlite path made absolute), its name, and why it cannot be read (else None)."""

    url: str
    name: str
    shown: str  # the URL as the report prints it (password hidden)
    unreadable: str | None = None


def trial_hydra(sweep: Path) -> DictConfig:
    """The `hydra` node recorded by the sweep's first trial."""
    return OmegaConf.load(sorted(sweep.glob("*/.hydra/hydra.yaml"))[0]).hydra


def locate(hydra: DictConfig, root: Path) -> Where:
    """Where the study of an Optuna sweep is stored, from the `hydra` node of one of its trials."""
    from sqlalchemy.engine import make_url

    name, storage = str(hydra.sweeper.study_name), hydra.sweeper.storage
    if storage is None:
        return Where("", name, "null", "hydra.sweeper.storage=null : l'étude n'a existé qu'en mémoire")
    url = make_url(str(storage))
    shown = url.render_as_string(hide_password=True)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return Where(str(storage), name, shown)
    path = Path(url.database).expanduser()
    candidates = [path] if path.is_absolute() else [Path(hydra.runtime.cwd) / path, root / path]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return Where(str(url.set(database=str(candidates[0]))), name, shown, f"fichier `{candidates[0]}` introuvable")
    return Where(str(url.set(database=str(found.resolve()))), name, shown)


def load(where: Where) -> tuple[Any, str | None]:
    """(the study, None), or (None, why it cannot be read)."""
    if where.unreadable:
        return None, where.unreadable
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines as optuna imports it
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=where.name, storage=where.url), None
    except KeyError:
        return None, f"aucune étude `{where.name}` dans {where.shown}"
    except Exception as err:  # noqa: BLE001 - an unreachable database is reported, not fatal to the report
        return None, f"{type(err).__name__}: {err}".splitlines()[0]


def study_sweeps(c: Context, where: Where) -> list[Path]:
    """The Optuna sweep dirs (under multirun/) that ran the same study, oldest first; the chosen run included."""
    found = {c.runs["optuna"]}
    if not where.url:  # in memory: each run had its own study
        return list(found)
    for summary in (c.root / "multirun").rglob("summary.csv") if (c.root / "multirun").is_dir() else []:
        sweep = summary.parent
        hydra = trial_hydra(sweep) if any(sweep.glob("*/.hydra/hydra.yaml")) else None
        if hydra is not None and hydra.sweeper.get("study_name") is not None:
            other = locate(hydra, c.root)
            if (other.url, other.name) == (where.url, where.name):
                found.add(sweep)
    return sorted(found, key=lambda p: (p / "summary.csv").stat().st_mtime)


def chosen_study(c: Context) -> tuple[Where, list[Path]]:
    """Where the chosen Optuna run's study is stored and every sweep dir that ran it (found once per report)."""
    def find() -> tuple[Where, list[Path]]:
        where = locate(trial_hydra(c.runs["optuna"]), c.root)
        return where, study_sweeps(c, where)

    return c.memo("optuna_study", find)


def commands(c: Context) -> list[str]:
    """The distinct commands that added trials to the study of the chosen Optuna run, in order."""
    return list(dict.fromkeys(command(s, "optuna") for s in chosen_study(c)[1]))


def trials_table(study: Any, monitor: str) -> str:
    """Every trial: number, state, value(s), sampled parameters, start and duration."""
    trials = study.get_trials(deepcopy=False)
    names = list(dict.fromkeys(k for t in trials for k in t.params))
    rows = []
    for t in trials:
        values = "" if t.values is None else " ; ".join(fixed(v) for v in t.values)
        start = t.datetime_start.strftime("%Y-%m-%d %H:%M:%S") if t.datetime_start else ""
        took = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and start else None
        rows.append([t.number, STATE_NAMES.get(t.state.name, t.state.name), values, *(t.params.get(k, "") for k in names), start,
                     "" if took is None else round(took, 1)])
    return table(["Essai", "État", monitor, *names, "Début", "Durée (s)"], rows)


def best_line(study: Any, monitor: str) -> str:
    """The best trial (single objective) or the Pareto front (several)."""
    if len(study.directions) > 1:
        return f"front de Pareto : essais {', '.join(str(t.number) for t in study.best_trials)}"
    try:
        best = study.best_trial
    except ValueError:
        return "aucun essai terminé"
    params = ", ".join(f"`{k}={fmt(v)}`" for k, v in best.params.items())
    return f"meilleur essai #{best.number} : {monitor} = `{best.value:.4f}` ; paramètres : {params}"


def history(c: Context, study: Any, monitor: str) -> str:
    """The optimization-history figure (finished trials with a finite value), or nothing when there are none."""
    import math

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.values
            and math.isfinite(t.values[0])]
    if not done or len(study.directions) > 1:
        return ""
    png = figures.optimization_history(
        c.figure_path("optuna_history.png"), [t.number for t in done], [t.value for t in done],
        study.direction.name == "MAXIMIZE", monitor, title=f"Étude Optuna {study.study_name}")
    return f"\n\n![M8 historique d'optimisation Optuna](figures/{png.name})"


def optuna(c: Context) -> str:
    """Section 8: the whole study (states, best trial, every trial, history), or the latest sweep as a fallback."""
    where, sweeps = chosen_study(c)
    counts = {s: len(list(s.glob("*/.hydra"))) for s in sweeps}
    runs = "\n".join(f"  - `{c.rel(s)}` ({n} essai{'s' if n > 1 else ''}) : `{command(s, 'optuna')}`"
                     for s, n in counts.items())
    head = (f"- **Changement(s)** : recherche Optuna (TPE) sur l'espace de `hydra.sweeper.params` (LR, WD, axes du modèle) ; étude `{where.name}` "
            f"(stockage `{where.shown}`), {plural(len(sweeps), 'run')} :\n{runs}\n")
    study, why = load(where)
    if study is None:
        return (f"{head}\n> _Étude non lue ({why}) : seul le dernier run est résumé._\n\n"
                + sweep_table(c, "optuna"))
    monitor = sweep_monitor(c, "optuna")
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    states = [*STATES, *sorted(set(counts) - set(STATES))]
    direction = ", ".join({"MAXIMIZE": "à maximiser", "MINIMIZE": "à minimiser"}.get(d.name, d.name)
                          for d in study.directions)
    return (f"{head}- **Essais** ({sum(counts.values())}, {direction}) : "
            + ", ".join(f"{STATE_NAMES.get(s, s)} = {counts.get(s, 0)}" for s in states)
            + f"\n- **Résultat** : {best_line(study, monitor)}\n\n" + trials_table(study, monitor)
            + history(c, study, monitor))
