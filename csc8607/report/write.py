"""`python report.py`: the template filled from the runs found, written to <out>/report.md without losing the
student's text (a report.md that differs from the new one is kept first as report.<time>.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from csc8607 import checkpoint
from csc8607.errors import UserError
from csc8607.report import UNREADABLE_SECTION, Context, render
from csc8607.report.answers import ANSWERS, BODIES
from csc8607.report.runs import find_runs

TEMPLATE = Path(__file__).resolve().parents[2] / "conf" / "report_template.md"  # the course template


def write_report(root: Path, out: str, template: str | None, chosen: Any) -> None:
    """Fill `template` (None: the course's) from the runs under `root` (`chosen[preset]`: a given run dir) and
    write `root/out/report.md`, saying which runs were used and which sections could not be generated."""
    out = str(out)  # `out=5` arrives as an int
    template_path = Path(template).expanduser() if template else TEMPLATE
    if not template_path.is_file():
        raise UserError(f"template={template_path} is not a file")
    if not isinstance(chosen, dict):
        raise UserError(f"runs={chosen!r} must give a run dir per preset: runs.<preset>=DIR (e.g. "
                        "runs.full=outputs/DATE/TIME)")
    existing = next(p for p in [root / out, *(root / out).parents] if p.exists())
    if not existing.is_dir():
        raise UserError(f"out={out}: {existing} is a file, not a folder; give a folder for report.md and figures/")
    runs, left_out = find_runs(root, chosen)
    for note in left_out:
        print(f"warning: {note} (runs.<preset>=DIR le choisit ; un dossier par expérience les sépare)", file=sys.stderr)
    context = Context(runs, root, root / out, left_out)
    text = render(template_path.read_text(), context, BODIES, ANSWERS)
    path = root / out / "report.md"
    if path.exists() and path.read_text() != text:
        kept = checkpoint.install(path, lambda tmp: tmp.write_text(text))
        print(f"previous report kept as {kept}")
    else:
        checkpoint.write_text(path, text)
    stale = prune_figures(root / out / "figures", context.written)
    print(f"report: {path} ({len(runs)} runs: {', '.join(sorted(runs)) or 'none'})"
          + (f"; removed the figures it no longer shows: {', '.join(stale)}" if stale else ""))
    damaged = text.count(UNREADABLE_SECTION)
    if damaged:
        print(f"warning: {damaged} sections or answers not generated (a run's file is corrupt, empty or missing): "
              f"search {path} for '{UNREADABLE_SECTION}'", file=sys.stderr)


def prune_figures(folder: Path, written: set[str]) -> list[str]:
    """Remove the figures an earlier report wrote in `folder` that this one did not write (a comparison by an axis
    no longer compared would otherwise stay beside the report); files put there by hand are never in the list
    (figures/.written records what the report wrote). Returns the names removed."""
    record = folder / ".written"
    before = set(record.read_text().split()) if record.is_file() else set()
    stale = sorted(n for n in before - written if "/" not in n and not n.startswith("."))
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    if written or before:
        checkpoint.write_text(record, "".join(f"{n}\n" for n in sorted(written)))
    return stale

