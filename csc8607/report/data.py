"""Section 1 of the report (the data: D1–D11): the dataset, its splits, preprocessing, augmentation and what
was found, from the `experiment=data` run's data.json, in the report's language."""
from __future__ import annotations

from csc8607.report import Context, num, plural, prose, table


TASKS = {"multiclass": "classification multiclasse", "binary": "classification binaire",
         "multilabel": "classification multi-label", "regression": "régression"}


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


TRUNCATION = {"head": "`head` (les max_length premiers jetons gardés)",
              "head_tail": "`head_tail` (la première et la dernière moitié de max_length gardées)"}
PADDING = {"batch_longest": "chaque batch complété jusqu'à son texte le plus long (pas jusqu'à max_length)"}


def dataset(c: Context) -> str:
    d = c.json("data")["dataset"]
    facts = d.get("input") or {}
    kind = {"audio": f"audio (log-mel {facts.get('n_mels')} bandes × {facts.get('frames')} trames, "
                     f"{facts.get('sample_rate')} Hz, {num(facts.get('duration_s'))} s)",
            "series": f"séries temporelles ({plural(facts.get('channels') or 0, 'canal', 'canaux')} × "
                      f"{plural(facts.get('length') or 0, 'pas', 'pas')})",
            "text": f"texte (suites d'identifiants de jetons, au plus {facts.get('max_length')} ; vocabulaire de "
                    f"{facts.get('vocab_size')} jetons)"}.get(
        d.get("modality", "image"),
        "image " + ("en niveaux de gris" if d["input_shape"][0] == 1 else f"{d['input_shape'][0]} canaux"))
    return (f"- **Source** : {d['source']} (`data={c.choice('data', 'data')}`)\n- **Type d’entrée** : {kind}\n"
            f"- **Tâche** : {TASKS.get(d['task'], d['task'])}\n"
            f"- **Dimensions d’entrée attendues** (`meta[\"input_shape\"]`) : "
            f"`{tuple(d['input_shape'])}`\n- **Nombre de classes** (`meta[\"num_classes\"]`) : {num(d['num_classes'])}"
            + (" (régression : une valeur prédite par exemple, pas de classes)" if d["task"] == "regression" else ""))


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


STATS = {"mean": "Moyenne", "std": "Écart-type", "min": "Min", "q25": "1er quartile", "median": "Médiane",
         "q75": "3e quartile", "max": "Max"}


def target_text(t: dict) -> str:
    """A split's regression target in prose: mean, std and range."""
    return f"cible : moyenne {num(t['mean'])}, écart-type {num(t['std'])}, de {num(t['min'])} à {num(t['max'])}"


def balance(j: dict, split: str) -> str:
    """D2's particularity of a split: its classes' sizes and their ratio, or (regression) its target's distribution."""
    if j.get("target_summary"):
        return target_text(j["target_summary"][split])
    n = j["class_counts"][split]
    return f"classes de {num(min(n))} à {num(max(n))} exemples (ratio {num(round(max(n) / max(min(n), 1), 2))})"


def splits(c: Context) -> str:
    j = c.json("data")
    rows = [[s.capitalize(), j["split_sizes"][s], balance(j, s) + input_length(j["dataset"], s)]
            for s in j["class_counts"]]
    return table(["Split", "#Exemples", "Particularités (déséquilibre, longueur moyenne, etc.)"], rows)


def preprocess(c: Context) -> str:
    j = c.json("data")
    p, modality = j["preprocess"], j["dataset"].get("modality", "image")
    norm = f"normalize = (mean = {per_channel(p['mean'])}, std = {per_channel(p['std'])})"
    if modality == "audio":
        return (f"- Audio : mono, resample à {p['sample_rate']} Hz, durée fixe {num(p['duration'])} s (début conservé si plus "
                f"long, silence ajouté à la fin si plus court), log-mel n_mels = {p['n_mels']}, n_fft = {p['n_fft']}, hop_length = "
                f"{p['hop_length']} (fenêtre {p['window']}, échelle {p['mel_scale']}), en dB (plancher max − "
                f"{num(p['top_db'])} dB), {norm} (statistiques de train)")
    if modality == "series":
        windows = f"fenêtres de {p['window']} pas (décalage {p['stride'] or p['window']})" if p["window"] else \
            "sans fenêtrage"
        return (f"- Séries : longueur {p['length'] or 'de la source (toutes égales)'}, {windows}, normalisation par "
                f"canal (train) : {norm}")
    if modality == "text":
        f = j["dataset"]["input"]
        vocab = (f"vocabulaire du split train seul ({p['vocab_size']} jetons au plus, fréquence ≥ {p['min_freq']}, "
                 "`<pad>` = 0, `<unk>` = 1)") if p["tokenizer"] == "word" else "vocabulaire du tokenizer"
        tokenizer = f"`{f['tokenizer']}`" + (" (NFKC, mots et ponctuation en minuscules)" if f["tokenizer"] == "word"
                                             else "")
        return (f"- Texte : tokenizer {tokenizer}, {vocab} → {f['vocab_size']} jetons ; max_length = "
                f"{p['max_length']}, troncature {TRUNCATION.get(p['truncation'], p['truncation'])} ; padding : "
                f"{PADDING.get(p['padding'], p['padding'])}"
                + (", batchs de train tirés parmi des textes de longueurs voisines" if p.get("length_buckets") else "")
                + " (masqué par le modèle)")
    size = shape(p["image_size"]) if isinstance(p["image_size"], list) else \
        (j["dataset"]["notes"].get("decoding") or {}).get("image_size") or \
        f"aucun (taille de la source, {shape(j['dataset']['input_shape'][1:])})"
    if p.get("resize"):
        size = f"côté court à {num(p['resize'])} px puis center-crop {size}"
    resized = [f"{split} : {found['image_size']}" for split, found in  # other splits resized to the first's (auto)
               (j["dataset"]["notes"].get("decoding") or {}).items() if isinstance(found, dict) and "image_size" in found]
    size += f" ; redimensionnés : {' ; '.join(resized)}" if resized else ""
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


def class_answer(c: Context) -> str:
    j = c.json("data")
    if j.get("target_summary"):  # regression: the target's distribution, not classes
        stats = j["target_summary"]
        return (c.figure("data", "class_distribution.png", "D4 histogramme de la cible (train, val, test)") + "\n\n"
                + table(["Cible", *stats], [[name, *(stats[s][k] for s in stats)] for k, name in STATS.items()]))
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
    ratio = j["imbalance_ratio_train"]
    return (f"- {notes}\n{grey}- Tailles décodées : {sizes}"
            + ("" if ratio is None else f"\n- Déséquilibre train (max/min) : {num(round(ratio, 2))}"))


def texts_read(c: Context) -> str:
    """D10 for text: the examples as the model reads them (decoded tokens, ‹unk› for unknown words)."""
    j = c.json("data")
    texts = j.get("example_texts") or {}
    return "".join(f"\n- {s} ({label}) : « {t} »" for s, shown in texts.items()
                   for label, t in zip(j["examples"][s], shown))
