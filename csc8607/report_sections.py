"""The body of each report section and the measured answer to each question, from the runs' JSON files.

BODIES: heading number -> (presets it needs, renderer); ANSWERS: question id -> the same. A renderer whose runs
are missing is replaced by the command that produces them (Context.missing).
"""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from csc8607 import axes, checkpoint, figures
from csc8607.report import (UNREADABLE, Context, Renderer, ReportInputError, first_line, fmt, num, plural, prose,
                            sweep_job_config, sweep_rows, sweep_table, table)
from csc8607.report_optuna import commands as optuna_commands, optuna
from csc8607.report_runs import HINTS, RESULTS, command  # RESULTS: the presets in the report's order


def run_commands(c: Context) -> list[tuple[str, str]]:
    """(preset, command) of each run found, in the report's order; every run of the Optuna study."""
    def commands(preset: str) -> list[str]:
        try:
            return optuna_commands(c) if preset == "optuna" else [command(c.runs[preset], preset)]
        except (*UNREADABLE, ReportInputError, KeyError, IndexError) as err:  # one run's records damaged
            return [f"# {preset} : commande illisible ({first_line(err)}) ; refaire : {HINTS[preset]}"]

    return c.memo("commands", lambda: [(p, cmd) for p in RESULTS if p in c.runs for cmd in commands(p)])


TASKS = {"multiclass": "classification multiclasse", "binary": "classification binaire",
         "multilabel": "classification multi-label", "regression": "régression"}
CHECKS = {"initial_loss_finite": "loss initiale finie", "initial_loss_near_expected":
          "loss initiale proche de l'attendue", "backward_ok": "backward sans erreur",
          "grad_norms_nonzero": "gradients non nuls"}
VERDICTS = {"PASS": "réussi", "FAIL": "échoué"}
RULES = {  # M4's rule (lr_finder.json "rule", English as logged) in the report's language; a new rule needs its line
    "suggested LR = steepest descent of the smoothed loss vs log10(LR), between the first skip_start points and the "
    "minimum of the smoothed loss; stable window = the contiguous LR range around it where the slope is at most half "
    "the steepest slope": "LR suggéré = pente la plus négative de la loss lissée en fonction de log10(LR), entre les "
    "skip_start premiers points et le minimum de la loss lissée ; fenêtre stable = la plage contiguë de LR autour de "
    "lui où la loss descend au moins moitié aussi vite qu'au point le plus raide"}
NOTES = {  # the keys of meta["notes"] (and of what decoding found) as D5 names them
    "pixel_range": "Plage des pixels", "wnids": "Identifiants WordNet des classes", "label_ids": "Identifiants des "
    "classes dans la source", "unlabelled test/ folder": "Dossier test/ sans étiquettes", "partition_file":
    "Fichier de partition", "labels_from": "Étiquettes lues dans", "channels": "Canaux", "decoding": "Décodage",
    "image_size": "taille des images", "cropped": "coupés", "padded": "complétés", "seconds_min": "durée min (s)",
    "seconds_mean": "durée moyenne (s)", "seconds_max": "durée max (s)", "source_rates": "fréquences de la source "
    "(Hz)", "constant channels in train": "canaux constants en train"}


def shape(dims: list[int]) -> str:
    """`(64, 1, 8, 8)` as written in prose: 64 × 1 × 8 × 8."""
    return " × ".join(num(int(d)) for d in dims)


def per_channel(values: list[float]) -> str:
    """One value per channel: `0,3063`, or `(0,4914 ; 0,4822 ; 0,4465)`."""
    shown = " ; ".join(num(round(v, 4)) for v in values)
    return shown if len(values) == 1 else f"({shown})"


def model_axes(cfg: Any) -> str:
    return axes.describe(cfg) or "aucun axe déclaré"


def numeric_first(text: str) -> tuple[bool, float, str]:
    try:
        return False, float(text), text
    except ValueError:
        return True, 0.0, text


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


def dataset(c: Context) -> str:
    d = c.json("data")["dataset"]
    facts = d.get("input") or {}
    kind = {"audio": f"audio (log-mel {facts.get('n_mels')} bandes × {facts.get('frames')} trames, "
                     f"{facts.get('sample_rate')} Hz, {facts.get('duration_s')} s)",
            "series": f"séries temporelles ({facts.get('channels')} canaux × {facts.get('length')} pas)",
            "text": f"texte (suites d'identifiants de jetons, au plus {facts.get('max_length')} ; vocabulaire de "
                    f"{facts.get('vocab_size')} jetons)"}.get(
        d.get("modality", "image"),
        "image " + ("en niveaux de gris" if d["input_shape"][0] == 1 else f"{d['input_shape'][0]} canaux"))
    return (f"- **Source** : {d['source']} (`data={c.choice('data', 'data')}`)\n- **Type d’entrée** : {kind}\n"
            f"- **Tâche** : {TASKS.get(d['task'], d['task'])}\n"
            f"- **Dimensions d’entrée attendues** (`meta[\"input_shape\"]`) : "
            f"`{tuple(d['input_shape'])}`\n- **Nombre de classes** (`meta[\"num_classes\"]`) : {num(d['num_classes'])}")


def input_length(d: dict, split: str = "train") -> str:
    """D2's "longueur moyenne": what every example has after preprocessing (audio: seconds and frames)."""
    facts = d.get("input") or {}
    if d.get("modality") == "audio":
        return f" ; {num(facts.get('duration_s'))} s = {num(facts.get('frames'))} trames chacun (ramenés à cette durée)"
    if d.get("modality") == "series":
        return f" ; {num(facts.get('length'))} pas chacun"
    if d.get("modality") == "text":
        t = facts["per_split"][split]["tokens"]
        return (f" ; longueur en jetons : moyenne {num(round(t['mean'], 1))}, médiane {num(round(t['median']))}, "
                f"95e centile {num(round(t['p95']))}")
    return ""


def splits(c: Context) -> str:
    j = c.json("data")
    rows = [[s.capitalize(), j["split_sizes"][s], f"classes de {num(min(n))} à {num(max(n))} exemples (ratio "
             f"{num(round(max(n) / max(min(n), 1), 2))}){input_length(j['dataset'], s)}"]
            for s, n in j["class_counts"].items()]
    return table(["Split", "#Exemples", "Particularités (déséquilibre, longueur moyenne, etc.)"], rows)


def preprocess(c: Context) -> str:
    j = c.json("data")
    p, modality = j["preprocess"], j["dataset"].get("modality", "image")
    norm = f"normalize = (mean = {per_channel(p['mean'])}, std = {per_channel(p['std'])})"
    if modality == "audio":
        return (f"- Audio : mono, resample à {p['sample_rate']} Hz, durée fixe {p['duration']} s (début conservé si plus "
                f"long, silence ajouté à la fin si plus court), log-mel n_mels = {p['n_mels']}, n_fft = {p['n_fft']}, hop_length = "
                f"{p['hop_length']} (fenêtre {p['window']}, échelle {p['mel_scale']}), en dB (plancher max − "
                f"{p['top_db']} dB), {norm} (statistiques de train)")
    if modality == "series":
        return (f"- Séries : longueur {p['length'] or 'de la source (toutes égales)'}, fenêtres "
                f"{p['window'] or 'aucune'} (pas {p['stride']}), normalisation par canal (train) : {norm}")
    if modality == "text":
        f = j["dataset"]["input"]
        vocab = (f"vocabulaire du split train seul ({p['vocab_size']} jetons au plus, fréquence ≥ {p['min_freq']}, "
                 "`<pad>` = 0, `<unk>` = 1)") if p["tokenizer"] == "word" else "vocabulaire du tokenizer"
        return (f"- Texte : tokenizer `{f['tokenizer']}`, {vocab} → {f['vocab_size']} jetons ; max_length = "
                f"{p['max_length']}, troncature {p['truncation']} ; padding : {p['padding']} (masqué par le modèle)")
    size = shape(p["image_size"]) if isinstance(p["image_size"], list) else \
        (j["dataset"]["notes"].get("decoding") or {}).get("image_size") or \
        f"aucun (taille de la source, {shape(j['dataset']['input_shape'][1:])})"
    if p.get("resize"):
        size = f"côté court à {num(p['resize'])} px puis center-crop {size}"
    have = j["dataset"]["input"]["channels"]
    channels = (f"{plural(have, 'canal', 'canaux')} comme la source ({'niveaux de gris' if have == 1 else 'RGB'}, "
                "aucune conversion)" if p["channels"] in (None, "auto") else
                f"conversion en {plural(have, 'canal', 'canaux')} (`data.channels={p['channels']}`)")
    return f"- Vision : {channels}, resize = {size}, uint8 → float, {norm}"


LABEL_PRESERVING = {  # augmentations whose reason to keep the label is not visible on an example (D9)
    "token_dropout": "une fraction des jetons réels de chaque texte remplacée par `<unk>` : quelques mots manquants "
                     "changent rarement le sentiment d'une critique ou le thème d'un article, le label est conservé"}


def augment(c: Context) -> str:
    a = c.json("data")["augment"]
    shown = ", ".join(f"`{k} = {str(v).lower() if isinstance(v, bool) else v}`" for k, v in a.items())
    return ("- " + (shown or "aucune augmentation") + " (train uniquement)"
            + "".join(f"\n- `{k}` : {LABEL_PRESERVING[k]}" for k in a if k in LABEL_PRESERVING))


def architecture(c: Context) -> str:
    j, cfg = c.json("sanity"), c.config("sanity")
    rows = [[r["layer"], r["type"], shape(r["output_shape"]), r["params"]] for r in j["layers"]]
    loss = j.get("loss") or ("CrossEntropyLoss" if j["expected_rule"].startswith("-log") else "BCEWithLogitsLoss")
    return (f"- **Description couche par couche** (`{cfg.model._target_}`, {model_axes(cfg)}, la configuration du "
            "run `experiment=sanity`) :\n\n"
            + table(["Couche", "Type", "Sortie", "#Paramètres"], rows)
            + f"\n\n- **Loss function** : {loss}\n- **Sortie du modèle** : forme = `{tuple(j['output_shape'])}`\n"
            f"- **Nombre total de paramètres** : `{num(j['total_params'])}`\n" + model_hyperparameters(c, cfg)
            + word_vectors(j))


def model_hyperparameters(c: Context, cfg: Any) -> str:
    """The model's A and B and the values M5 tries (the grid's, else the model's declared `space`)."""
    declared = axes.keys(cfg)
    if "A" not in declared:
        return "- **Hyperparamètres du modèle** : aucun axe déclaré (`model.axes`)"
    rows = sweep_rows(c, "grid") if "grid" in c.runs else []
    space = OmegaConf.to_container(cfg.model.get("space") or {}, resolve=True)
    where = "la grille M5" if rows else "`model.space`, l'espace de la grille M5"
    parts = []
    for name in ("A", "B"):
        if name not in declared:
            continue
        key = declared[name].removeprefix("model.")
        tried = sorted({r.get(name, "") for r in rows}, key=numeric_first) if rows else \
            [str(v) for v in space.get(key, [])]  # type: ignore[union-attr]
        parts.append(f"{name} = `{key}` (valeurs de {where} : `{{{', '.join(tried)}}}` ; ici `{axes.values(cfg)[name]}`)")
    return "- **Hyperparamètres du modèle** : " + " ; ".join(parts)


def word_vectors(sanity: dict) -> str:
    """The pretrained word vectors a text model loaded (model.embeddings): how much of the vocabulary they cover."""
    return "".join(f"\n- **Vecteurs de mots pré-entraînés** (`{layer}`, fichier `{p['file'].split('/')[-1]}`) : "
                   f"{num(p['found'])} mots du vocabulaire sur {num(p['vocab_size'])} trouvés "
                   f"({num(100 * p['found'] / p['vocab_size'], 3)} %), dimension {num(p['dim'])}, "
                   f"{'gelés' if p['frozen'] else 'ajustés pendant l’entraînement'} ; les autres : init. aléatoire"
                   for layer, p in (sanity.get("pretrained") or {}).items())


def initial_loss(c: Context) -> str:
    j = c.json("sanity")
    return (f"- **Loss initiale attendue** : {j['expected_rule']} = `{j['expected_initial_loss']:.4f}` "
            f"(tolérance ± {num(j['tolerance'])})\n- **Observée sur un batch** : `{j['initial_loss']:.4f}`\n"
            f"- **Vérification** : {', '.join(f'{CHECKS.get(k, k)} : {num(v)}' for k, v in j['checks'].items())} "
            f"→ **{VERDICTS.get(j['verdict'], j['verdict'])}**\n\n"
            + c.figure("sanity", "grad_norms.png", "Normes des gradients par couche"))


def overfit(c: Context) -> str:
    j = c.json("overfit")
    return (f"- **Sous-ensemble train** : `N = {num(j['num_samples'])}` exemples (sans augmentation)\n"
            f"- **Hyperparamètres modèle utilisés** : {model_axes(c.config('overfit'))}\n- **Optimisation** : LR = `{fmt(j['lr'])}`, weight decay = "
            f"`{j['weight_decay']}`\n- **Nombre d’époques** : `{j['epochs_run']}` (train/loss finale "
            f"`{j['final_train_loss']:.4f}` < seuil {num(j['loss_threshold'])} : "
            f"**{VERDICTS.get(j['verdict'], j['verdict'])}**)\n\n"
            + c.figure("overfit", "overfit_loss.png", "M3 train/loss sur le petit échantillon"))


def lr_finder(c: Context) -> str:
    j = c.json("lr_finder")
    low, high = j["stable_window"]
    rows = [[k, v["suggestion"]["lr"], v["suggestion"]["window_low"], v["suggestion"]["window_high"], v["steps"]]
            for k, v in j["curves"].items()]
    return (f"- **Méthode** : {plural(j['iterations'], 'itération')}, LR de {fmt(j['lr_min'])} à {fmt(j['lr_max'])} "
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
    png = figures.line_plot(c.figures / f"{preset}_runs.png", panels, "époque", weight=0.0,
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
    return "\n\n".join(c.figure("compare", v["png"], f"M7 comparaison par {k}") for k, v in j["comparisons"].items())


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


def class_answer(c: Context) -> str:
    j = c.json("data")
    rows = [[name, *(j["class_counts"][s][i] for s in j["class_counts"])] for i, name in enumerate(j["class_names"])]
    return (c.figure("data", "class_distribution.png", "D4 distribution des classes") + "\n\n"
            + table(["Classe", *j["class_counts"]], rows[:50])
            + ("\n\n(50 premières classes)" if len(rows) > 50 else ""))


def particularities(c: Context) -> str:
    j = c.json("data")
    notes = "\n- ".join(f"{NOTES.get(k, k)} : {prose(v, NOTES)}" for k, v in j["dataset"]["notes"].items()) \
        or "Aucune particularité notée par la source"
    sizes = " ; ".join(f"{s} : {shape(v['shape'])}, moyenne par canal {per_channel(v['channel_mean'])}"
                       for s, v in j["input_sizes"].items())
    counts = j.get("grey_images") if j["dataset"]["input_shape"][0] > 1 else None  # 1 channel: all grey anyway
    grey = f"- Images en niveaux de gris (R = G = B) : {', '.join(f'{s} : {num(n)}' for s, n in counts.items())}\n" \
        if counts else ""
    if j["dataset"].get("modality") == "text":
        grey = "".join(f"- {s} : {num(round(100 * v['truncated'], 1))} % des textes tronqués à max_length, taux de "
                       f"`<unk>` {num(round(100 * v['unk_rate'], 2))} %, {num(v['no_token'])} textes sans jeton\n"
                       for s, v in j["dataset"]["input"]["per_split"].items())
        sizes = (f"identifiants int32, {shape(j['dataset']['input_shape'])} par texte, chaque batch coupé à son "
                 "plus long")
    cardinality = j.get("label_cardinality")
    if cardinality:
        grey += ("- Cardinalité multi-label (attributs positifs par exemple, en moyenne) : "
                 + ", ".join(f"{s} : {num(round(v, 2))}" for s, v in cardinality.items()) + "\n")
    return (f"- {notes}\n{grey}- Tailles décodées : {sizes}\n"
            f"- Déséquilibre train (max/min) : {num(round(j['imbalance_ratio_train'], 3))}")


def texts_read(c: Context) -> str:
    """D10 for text: the examples as the model reads them (decoded tokens, ‹unk› for unknown words)."""
    j = c.json("data")
    texts = j.get("example_texts") or {}
    return "".join(f"\n- {s} ({label}) : « {t} »" for s, shown in texts.items()
                   for label, t in zip(j["examples"][s], shown))


def baselines(c: Context) -> str:
    j = c.json("baselines")
    splits = [s for s in ("val", "test") if s in j]
    if "train_mean" in j:  # regression: the train mean predicted everywhere, scored by MAE, RMSE and R²
        out = [f"- **Moyenne de train** (`{fmt(j['train_mean'])}` prédite pour tout exemple) ({split}) — Métrique : "
               f"`rmse` → score = `{got['rmse']:.4f}` (attendu {num(exp['rmse'])}) ; mae = `{got['mae']:.4f}`, "
               f"R² = `{got['r2']:.4f}` (attendu {num(exp['r2'])}), loss ({j.get('loss', 'mse')}) = `{got['loss']:.4f}`"
               for split in splits for got, exp in [(j[split]["measured"]["train_mean"],
                                                     j[split]["expected"]["train_mean"])]]
        return "\n".join(out) + "\n\n" + c.figure("baselines", "baselines.png", "M0 baseline")
    labels = {"majority": "Classe majoritaire", "uniform_random": "Prédiction aléatoire uniforme"}
    metric = "accuracy"
    if "attributes" in j:  # multi-label: per attribute, F1 says more than accuracy
        labels = {"always_0": "Toujours 0 (aucun attribut)", "always_1": "Toujours 1 (tous les attributs)",
                  "majority": "Majorité par attribut (prior de train)",
                  "uniform_random": "Aléatoire (50 % par attribut)"}
        metric = "f1"
    out = []
    for split in splits:
        for name, label in labels.items():
            got, exp = j[split]["measured"][name], j[split]["expected"][name]
            other = "accuracy" if metric == "f1" else "f1"
            out.append(f"- **{label}** ({split}) — Métrique : `{metric}` → score = `{got[metric]:.4f}` "
                       f"(attendu {num(exp.get(metric, float('nan')))}) ; {other} = `{got.get(other, 0):.4f}`, "
                       f"loss = `{got['loss']:.4f}`")
    if "attributes" in j:
        split = splits[0]
        m = j[split]["measured"]
        rows = [[a, *(f"{m[n]['per_class_accuracy'][i]:.3f} / {m[n]['per_class_f1'][i]:.3f}"
                      for n in ("always_0", "always_1", "majority"))] for i, a in enumerate(j["attributes"])]
        out.append(f"\nPar attribut ({split}, accuracy / F1) :\n\n"
                   + table(["Attribut", "Toujours 0", "Toujours 1", "Majorité"], rows))
    return "\n".join(out) + "\n\n" + c.figure("baselines", "baselines.png", "M0 baselines")


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
           + ", ".join(f"{s} {num(n)}" for s, n in c.json("data")["split_sizes"].items())
           + f" ; {plural(c.json('data')['dataset']['num_classes'], 'classe')}."),
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
    "M5": (("grid",), lambda c: "Meilleure combinaison (validation) : `" + sweep_rows(c, "grid")[0]["run"] + "`."),
    "M7": (("compare",), lambda c: "Meilleure valeur de validation par valeur : " + " ; ".join(
        f"{k} {', '.join(f'{x} → {num(y)}' for x, y in v['best_by_value'].items())}"
        for k, v in c.json("compare")["comparisons"].items())),
    "M9": (("evaluate",), lambda c: f"Écart val − test : `{gap_text(c.json('evaluate').get('val_minus_test'))}`."
           + against_train_mean(c)),
}
