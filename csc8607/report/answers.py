"""The body of each report section and the measured answer to each question, from the runs' JSON files
(section 1's renderers are in report.data, section 2's in report.model).

BODIES: heading number -> (presets it needs, renderer); ANSWERS: question id -> the same. A renderer whose runs
are missing is replaced by the command that produces them (Context.missing).
"""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from csc8607 import axes, checkpoint, figures
from csc8607.config import LOWER
from csc8607.report import (UNREADABLE, Context, Renderer, ReportInputError, first_line, fmt, num, plural,
                            sweep_job_config, sweep_monitor, sweep_rows, sweep_table, table)
from csc8607.report.data import (augment, class_answer, dataset, particularities, preprocess, splits, target_text,
                                 texts_read)
from csc8607.report.model import architecture, baselines, initial_loss, numeric_first, overfit, word_vectors
from csc8607.report.optuna import commands as optuna_commands, optuna
from csc8607.report.runs import HINTS, RESULTS, command  # RESULTS: the presets in the report's order


def run_commands(c: Context) -> list[tuple[str, str]]:
    """(preset, command) of each run found, in the report's order; every run of the Optuna study."""
    def commands(preset: str) -> list[str]:
        try:
            return optuna_commands(c) if preset == "optuna" else [command(c.runs[preset], preset)]
        except (*UNREADABLE, ReportInputError, KeyError, IndexError) as err:  # one run's records damaged
            return [f"# {preset} : commande illisible ({first_line(err)}) ; refaire : {HINTS[preset]}"]

    return c.memo("commands", lambda: [(p, cmd) for p in RESULTS if p in c.runs for cmd in commands(p)])


RULES = {  # M4's rule (lr_finder.json "rule", English as logged) in the report's language; a new rule needs its line
    "suggested LR = steepest descent of the smoothed loss vs log10(LR), between the first skip_start points and the "
    "minimum of the smoothed loss; stable window = the contiguous LR range around it where the slope is at most half "
    "the steepest slope": "LR suggéré = pente la plus négative de la loss lissée en fonction de log10(LR), entre les "
    "skip_start premiers points et le minimum de la loss lissée ; fenêtre stable = la plage contiguë de LR autour de "
    "lui où la loss descend au moins moitié aussi vite qu'au point le plus raide"}


def kinds(c: Context) -> str:
    """D2's "nombre de classes": the count, or for a regression its target's train distribution."""
    j = c.json("data")
    if j.get("target_summary"):
        return f"régression, pas de classes ; train : {target_text(j['target_summary']['train'])}"
    return plural(j["dataset"]["num_classes"], "classe")


def general(c: Context) -> str:
    train_run = next((p for p in ("full", "grid", "optuna") if p in c.runs), None)
    if train_run is None:
        env = "_Aucun run d'entraînement : `python train.py experiment=full`_"
    else:
        metrics = next((c.runs[train_run]).rglob("metrics.json"))
        v = checkpoint.read_json(metrics)["versions"]
        env = ", ".join(f"`{k} == {v[k]}`" for k in ("python", "torch", "torchvision", "hydra", "cuda")
                        if k in v and v[k] != "none") + (", sans CUDA (CPU)" if v.get("cuda") == "none" else "")
        if v.get("git_commit"):
            env += f", commit `{v['git_commit'][:12]}`" + (" (avec des modifications non validées)" if v["git_dirty"]
                                                          else "")
    cmds = "\n".join(f"  - {p} : `{cmd}`" for p, cmd in run_commands(c)) or "  - _Aucun run_"
    return (f"- **Étudiant·e** : _Nom, Prénom_ (à compléter)\n- **Projet** : _Intitulé (dataset × modèle)_ "
            f"(à compléter)\n- **Dépôt Git** : _URL publique_ (à compléter)\n- **Environnement** : {env}\n"
            f"- **Commandes utilisées** :\n{cmds}")


def lr_finder(c: Context) -> str:
    j = c.json("lr_finder")
    low, high = j["stable_window"]
    rows = [[k, v["suggestion"]["lr"], v["suggestion"]["window_low"], v["suggestion"]["window_high"], v["steps"]]
            for k, v in j["curves"].items()]
    return (f"- **Méthode** : {plural(j['iterations'], 'itération')}, LR de `{fmt(j['lr_min'])}` à `{fmt(j['lr_max'])}` "
            f"(échelle log) ; règle : {RULES.get(j['rule'], j['rule'])}\n"
            f"- **Fenêtre stable retenue** : `{fmt(low)} → {fmt(high)}`\n"
            f"- **Choix pour la suite** :\n  - **LR** = `{fmt(j['suggested_lr'])}` (suggéré)\n"
            f"  - **Weight decay** = _à choisir parmi les courbes ci-dessous_\n\n"
            + table(["Courbe", "LR suggéré", "Fenêtre basse", "Fenêtre haute", "Pas"], rows) + "\n\n"
            + c.figure("lr_finder", "lr_finder.png", "M4 LR finder : loss selon le LR"))


def sweep_figure(c: Context, preset: str) -> str:
    """Val loss and val metric against the epoch, one curve per job of the sweep (from metrics.json), best run
    first (the summary's order: the legend reads as the ranking, the colours follow it)."""
    ranking = [r["run"] for r in sweep_rows(c, preset)]
    runs = [checkpoint.read_json(path) for path in sorted(c.runs[preset].glob("*/metrics.json"))]
    runs.sort(key=lambda m: ranking.index(m["run_name"]) if m["run_name"] in ranking else len(ranking))
    panels: dict[str, dict[str, Any]] = {"val/loss": {}}
    for m in runs:
        epochs = [row["epoch"] for row in m["history"]]
        for tag in ("val/loss", m["monitor"]):
            panels.setdefault(tag, {})[m["run_name"]] = (epochs, [row[tag] for row in m["history"]])
    png = figures.line_plot(c.figure_path(f"{preset}_runs.png"), panels, "époque", weight=0.0,
                            title=f"{preset} : courbes de validation par run (du meilleur au moins bon)")
    return f"![{preset} : courbes de validation par run](figures/{png.name})"


def grid(c: Context) -> str:
    rows, job = sweep_rows(c, "grid"), sweep_job_config(c, "grid")
    values = {k: sorted({r.get(k, "") for r in rows}, key=numeric_first) for k in axes.NAMES}
    names = {"lr": "LR", "wd": "Weight decay", "A": f"Hyperparamètre modèle {axes.label(job, 'A')}",
             "B": f"Hyperparamètre modèle {axes.label(job, 'B')}"}
    source = OmegaConf.select(job, "grid.lr_from", default=None)
    origin = {"lr": f" (LR suggéré par M4 × `{list(job.grid.lr_factors)}`, `grid.lr_from={source}`)" if source else ""}
    return ("- **Grilles** :\n" + "\n".join(f"  - {names[k]} : `{{{', '.join(values[k])}}}`{origin.get(k, '')}"
                                         for k in axes.NAMES)
            + f"\n\n- **Durée des runs** : {plural(job.trainer.max_epochs, 'époque')} par run, même seed\n\n"
            + sweep_table(c, "grid")
            + "\n\n" + sweep_figure(c, "grid"))


BASELINE_NAMES = {"majority": "classe majoritaire", "train_mean": "moyenne de train"}


def against_baseline(c: Context, preset: str) -> str:
    """M5: the sweep's best val value beside M0's constant prediction (majority class, train mean) on val, and a
    warning when it is no better: the runs have not learned more than the label distribution."""
    rows = [r for r in sweep_rows(c, preset) if r["status"] == "ok"]
    if "baselines" not in c.runs or not rows:
        return ""
    monitor = sweep_monitor(c, preset)
    metric = monitor.split("/")[-1]
    measured = c.json("baselines").get("val", {}).get("measured", {})
    name = next((n for n in BASELINE_NAMES if metric in measured.get(n, {})), None)
    if name is None:
        return ""
    best, base = float(rows[0]["val_metric"]), float(measured[name][metric])
    better = best < base if metric in LOWER else best > base
    text = f" Référence M0 sur val ({BASELINE_NAMES[name]}) : {metric} {num(base)} ; meilleur run : {num(best)}."
    return text + ("" if better else f"\n\n> **Attention** : le meilleur run de la grille ne fait pas mieux que la "
                   f"référence M0 ({BASELINE_NAMES[name]}) : il n'a rien appris de plus qu'une prédiction constante ; "
                   "revoir le LR (M4), le nombre d'époques ou le modèle avant d'interpréter la grille.")


def full(c: Context) -> str:
    cfg, j = c.config("full"), c.json("full")
    origin = j.get("from_sweep")
    origin = (f"- **Origine** : meilleur run de la grille `{c.rel(origin['job'])}` ({origin['monitor']} = "
              f"`{origin['value']:.4f}`), `full.from_sweep`\n" if origin else
              "- **Origine** : la configuration de la commande (sans `full.from_sweep`)\n")
    return (origin + f"- **Configuration finale** :\n  - LR = `{cfg.optim.lr}`\n  - Weight decay = `{cfg.optim.weight_decay}`\n"
            + "".join(f"  - Hyperparamètre modèle {axes.label(cfg, k)} = `{axes.values(cfg)[k]}`\n" for k in "AB")
            + f"  - Batch size = `{cfg.trainer.batch_size}`\n  - Époques = `{j['epochs']}`\n"
            f"- **Checkpoint** : `{c.rel(j['best_ckpt'])}` (époque {j['best_epoch']}, {j['monitor']} = "
            f"`{j['best_value']:.4f}`)\n\n" + c.figure("full", "curves.png", "M6 courbes train/val"))


def compare(c: Context) -> str:
    j = c.json("compare")
    return "\n\n".join([c.figure("compare", v["png"], f"M7 comparaison par {k}") for k, v in j["comparisons"].items()]
                       + [single_values(j)]).strip()


def single_values(j: dict) -> str:
    """The axes M7 drew no figure for: every compared run had the same value."""
    same = j.get("single_value") or {}
    return (f"Sans figure (une seule valeur parmi les {plural(len(j['runs']), 'run')} comparés, rien à comparer) : "
            + ", ".join(f"`{k}={v}`" for k, v in same.items()) + ".") if same else ""


def test_metrics(c: Context) -> str:
    j = c.json("evaluate")
    m, (monitor, val) = j["metrics"], next(iter(j["val_from_checkpoint"].items()))
    gap = j.get(f"val_minus_{j['split']}")
    secondary = ", ".join(f"{k} = `{m[k]:.4f}`" for k in m if isinstance(m[k], float) and k != monitor.split("/")[-1])
    warning = ""
    if "full" in c.runs:  # M9 must evaluate M6's model: an evaluation of an earlier export says so
        full_run = c.json("full")
        if (full_run["best_epoch"], full_run["best_value"]) != (j["epoch"], val):
            warning = (f"> **Attention** : ce checkpoint (époque {j['epoch']}, {monitor} = `{fmt(val)}`) n'est pas "
                       f"celui de M6 (époque {full_run['best_epoch']}, `{fmt(full_run['best_value'])}`) : refaire "
                       f"`python evaluate.py ckpt={c.rel(full_run['best_ckpt'])}`\n\n")
    return (warning + f"- **Checkpoint évalué** : `{c.rel(j['checkpoint'])}` (époque {j['epoch']})\n"
            f"- **Métriques {j['split']}** :\n"
            f"  - Metric principale (nom = `{monitor.split('/')[-1]}`) : `{m[monitor.split('/')[-1]]:.4f}`\n"
            f"  - Metric(s) secondaire(s) : {secondary}\n- **Validation** ({monitor}, checkpoint) : `{fmt(val)}` ; "
            f"écart val − {j['split']} : `{gap_text(gap)}`")


def gap_text(gap: float | None) -> str:
    """The val − test gap to two significant digits (`0.0074`), `—` when the checkpoint recorded no val value."""
    return "—" if gap is None else fmt(gap, 2)


def reproducibility(c: Context) -> str:
    # the config excerpt: of the full training if there is one, else of any run that keeps its config
    source = next((p for p in ("full", "data", *c.runs)
                   if p in c.runs and (c.runs[p] / ".hydra" / "config.yaml").exists()), None)
    if source is None:
        return "_Aucun run : `python train.py experiment=full`_"
    cfg = c.config(source)
    excerpt = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in ("data", "model", "optim", "scheduler",
                                                                         "trainer") if k in cfg]))
    cmds = "\n".join(cmd for _, cmd in run_commands(c))
    root = c.root

    def box(path: str) -> str:
        return f"  * [{'x' if (root / path).exists() else ' '}] `{path}`"

    return (f"- **Seed** : `{cfg.seed}`\n- **Config utilisée** (run `{source}`) :\n\n```yaml\n{excerpt}```\n\n"
            f"- **Commandes exactes** :\n\n```bash\n{cmds}\n```\n\n* **Artifacts requis présents** :\n\n"
            + "\n".join(box(p) for p in ("outputs", "multirun", "artifacts/best.ckpt", "artifacts/config.yaml")))


def against_train_mean(c: Context) -> str:
    """M9 for regression: the test errors beside the train-mean baseline's (M0), which R² = 0 stands for."""
    m = c.json("evaluate")["metrics"]
    if "rmse" not in m:
        return ""
    mean = c.json("baselines").get("test", {}).get("measured", {}).get("train_mean") if "baselines" in c.runs else None
    base = (f" ; la moyenne de train (M0) fait RMSE `{mean['rmse']:.4f}`, MAE `{mean['mae']:.4f}` sur test"
            if mean else "")
    return f" Test : RMSE `{m['rmse']:.4f}`, MAE `{m['mae']:.4f}`, R² `{m['r2']:.4f}` (0 = la moyenne de train){base}."


BODIES: dict[str, Renderer] = {  # heading number -> (runs needed, renderer of its body)
    "0)": ((), general), "1.1": (("data",), dataset), "1.2": (("data",), splits), "1.3": (("data",), preprocess),
    "1.4": (("data",), augment), "1.5": ((), lambda c: ""), "2.1": ((), lambda c: ""),
    "2.2": (("sanity",), architecture), "2.3": (("sanity",), initial_loss), "3)": (("overfit",), overfit),
    "4)": (("lr_finder",), lr_finder), "5)": (("grid",), grid), "6)": (("full",), full), "7)": (("compare",), compare),
    "8)": (("optuna",), optuna), "9)": (("evaluate",), test_metrics), "11)": ((), reproducibility),
}
ANSWERS: dict[str, Renderer] = {
    "D1": (("data",), lambda c: f"Dataset `{c.json('data')['dataset']['name']}` : voir 1.1."),
    "D2": (("data",), lambda c: "Tailles : "
           + ", ".join(f"{s} {num(n)}" for s, n in c.json("data")["split_sizes"].items()) + " ; " + kinds(c) + "."),
    "D3": (("data",), lambda c: "\n".join(f"- {k} : {v}" for k, v in c.json("data")["split_protocol"].items())),
    "D4": (("data",), class_answer), "D5": (("data",), particularities),
    "D7": (("data",), lambda c: "Les prétraitements ci-dessus sont appliqués à l'identique à train, val et test "
                                "(`meta[\"preprocess\"]`) ; l'augmentation ne touche que train."),
    "D10": (("data",), lambda c: c.figure("data", "examples.png", "D10 exemples après transformation") + "\n\n"
            + " ; ".join(f"{s} : {', '.join(v)}" for s, v in c.json("data")["examples"].items()) + texts_read(c)),
    "D11": (("data",), lambda c: f"Batch train : `{tuple(c.json('data')['train_batch_shape'])}` ; "
            f"`meta[\"input_shape\"]` = `{tuple(c.json('data')['dataset']['input_shape'])}` → cohérent : "
            f"**{num(c.json('data')['batch_shape_matches_meta'])}**"),
    "M0": (("baselines",), baselines),
    "M1": (("sanity",), lambda c: f"Nombre total de paramètres : `{num(c.json('sanity')['total_params'])}`."
           + word_vectors(c.json("sanity"))),
    "M2": (("sanity",), lambda c: f"Loss initiale `{c.json('sanity')['initial_loss']:.4f}` ; batch "
           f"`{tuple(c.json('sanity')['batch_shape'])}` → sortie `{tuple(c.json('sanity')['output_shape'])}`."),
    "M5": (("grid",), lambda c: "Meilleure combinaison (validation) : `" + sweep_rows(c, "grid")[0]["run"] + "`."
           + against_baseline(c, "grid")),
    "M7": (("compare",), lambda c: "Meilleure valeur de validation par valeur : " + (" ; ".join(
        ", ".join(f"`{k}={x}` → {num(y)}" for x, y in v["best_by_value"].items())
        for k, v in c.json("compare")["comparisons"].items()) or "aucune comparaison") + "."
        + (" " + single_values(c.json("compare"))).rstrip()),
    "M9": (("evaluate",), lambda c: f"Écart val − test : `{gap_text(c.json('evaluate').get('val_minus_test'))}`."
           + against_train_mean(c)),
}
