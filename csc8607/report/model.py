"""Section 2 of the report (the model: M0–M3): baselines, architecture, initial loss and the overfit test, from
the baselines, sanity and overfit runs, in the report's language."""
from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from csc8607 import axes
from csc8607.report import Context, fmt, num, sweep_rows, table
from csc8607.report.data import shape


CHECKS = {"initial_loss_finite": "loss initiale finie", "initial_loss_near_expected":
          "loss initiale proche de l'attendue", "backward_ok": "backward sans erreur",
          "grad_norms_nonzero": "gradients non nuls"}


VERDICTS = {"PASS": "réussi", "FAIL": "échoué"}


def model_axes(cfg: Any) -> str:
    return axes.describe(cfg) or "aucun axe déclaré"


def numeric_first(text: str) -> tuple[bool, float, str]:
    try:
        return False, float(text), text
    except ValueError:
        return True, 0.0, text


def baselines(c: Context) -> str:
    j = c.json("baselines")
    splits = [s for s in ("val", "test") if s in j]
    if "train_mean" in j:  # regression: the train mean predicted everywhere, scored by MAE, RMSE and R²
        out = [f"- **Moyenne de train** (`{fmt(j['train_mean'])}` prédite pour tout exemple) ({split}) — Métrique : "
               f"`rmse` → score = `{got['rmse']:.4f}` (attendu {num(exp['rmse'])}) ; mae = `{got['mae']:.4f}`, "
               f"R² = `{got['r2']:.4f}` (attendu {num(exp['r2'])}), loss ({j.get('loss', 'mse')}) = `{got['loss']:.4f}`"
               for split in splits for got, exp in [(j[split]["measured"]["train_mean"],
                                                     j[split]["expected"]["train_mean"])]]
        return "\n".join(out) + "\n\n" + c.figure("baselines", "baselines.png", "M0 référence : moyenne de train")
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
        rows = [[a, *(f"{num(round(m[n]['per_class_accuracy'][i], 3))} / {num(round(m[n]['per_class_f1'][i], 3))}"
                      for n in ("always_0", "always_1", "majority"))] for i, a in enumerate(j["attributes"])]
        out.append(f"\nPar attribut ({split}, accuracy / F1) :\n\n"
                   + table(["Attribut", "Toujours 0", "Toujours 1", "Majorité"], rows))
    return "\n".join(out) + "\n\n" + c.figure("baselines", "baselines.png", "M0 références")


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


def threshold(j: dict) -> str:
    """M3's pass threshold; in regression, relative to the target's scale (the train mean's loss, M0)."""
    scale = j.get("threshold_scale")
    return num(j["loss_threshold"]) if not scale else (
        f"{num(scale['fraction'])} × {num(scale['mean_prediction_loss'])} (loss de la prédiction constante par la "
        f"moyenne de train, M0) = {num(j['loss_threshold'])}")


def overfit(c: Context) -> str:
    j = c.json("overfit")
    return (f"- **Sous-ensemble train** : `N = {num(j['num_samples'])}` exemples (sans augmentation)\n"
            f"- **Hyperparamètres modèle utilisés** : {model_axes(c.config('overfit'))}\n- **Optimisation** : LR = `{fmt(j['lr'])}`, weight decay = "
            f"`{j['weight_decay']}`\n- **Nombre d’époques** : `{j['epochs_run']}` (train/loss finale "
            f"`{j['final_train_loss']:.4f}` < seuil {threshold(j)} : "
            f"**{VERDICTS.get(j['verdict'], j['verdict'])}**)\n\n"
            + c.figure("overfit", "overfit_loss.png", "M3 train/loss sur le petit échantillon"))
