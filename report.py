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
    from pathlib import Path

    from omegaconf import OmegaConf

    from csc8607.report.write import write_report

    write_report(Path(cfg.root), cfg.out, cfg.template,
                 OmegaConf.to_container(cfg.runs) if OmegaConf.is_config(cfg.runs) else cfg.runs)


if __name__ == "__main__":
    main()
