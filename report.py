#!/usr/bin/env python
"""Write the course report from the runs: `python report.py [runs.full=outputs/DATE/TIME] [out=report]`.

Fills conf/report_template.md (headings, order and language kept) from the latest run of each preset under
outputs/ and multirun/ and writes <out>/report.md and <out>/figures/*.png (the figures an earlier report wrote
that this one no longer shows are removed; files you put there stay). A report.md that differs from the new one
is kept first as report.<time>.md (your own text in it is never lost).
"""
from csc8607.errors import exit_on_user_error, quiet_interrupts

quiet_interrupts()  # Ctrl-C from here on: one error line, exit 130
import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="report")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    import sys
    from pathlib import Path

    from omegaconf import OmegaConf

    from csc8607 import checkpoint
    from csc8607.errors import UserError

    from csc8607.report import UNREADABLE_SECTION, Context, render
    from csc8607.report_sections import ANSWERS, BODIES
    from csc8607.report_runs import find_runs

    root = Path(cfg.root)
    default = Path(__file__).parent / "conf" / "report_template.md"
    template = Path(cfg.template).expanduser() if cfg.template else default
    if not template.is_file():
        raise UserError(f"template={template} is not a file")
    out = root / cfg.out
    runs, left_out = find_runs(root, OmegaConf.to_container(cfg.runs))
    for note in left_out:
        print(f"warning: {note} (runs.<preset>=DIR le choisit ; un dossier par expérience les sépare)", file=sys.stderr)
    context = Context(runs, root, out, left_out)
    text = render(template.read_text(), context, BODIES, ANSWERS)
    path = out / "report.md"
    if path.exists() and path.read_text() != text:
        kept = checkpoint.install(path, lambda tmp: tmp.write_text(text))
        print(f"previous report kept as {kept}")
    else:
        checkpoint.write_text(path, text)
    stale = prune_figures(out / "figures", context.written)
    print(f"report: {path} ({len(runs)} runs: {', '.join(sorted(runs)) or 'none'})"
          + (f"; removed the figures it no longer shows: {', '.join(stale)}" if stale else ""))
    damaged = text.count(UNREADABLE_SECTION)
    if damaged:
        print(f"warning: {damaged} sections or answers not generated (a run's file is corrupt, empty or missing): "
              f"search {path} for '{UNREADABLE_SECTION}'", file=sys.stderr)


def prune_figures(folder: "Path", written: set) -> list:
    """Remove the figures an earlier report wrote in `folder` that this one did not write (a comparison by an axis
    no longer compared would otherwise stay beside the report); files put there by hand are never in the list
    (figures/.written records what the report wrote). Returns the names removed."""
    from csc8607 import checkpoint

    record = folder / ".written"
    before = set(record.read_text().split()) if record.is_file() else set()
    stale = sorted(n for n in before - written if "/" not in n and not n.startswith("."))
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    if written or before:
        checkpoint.write_text(record, "".join(f"{n}\n" for n in sorted(written)))
    return stale


if __name__ == "__main__":
    main()
