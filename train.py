#!/usr/bin/env python
"""Train a model: `python train.py [experiment=<preset>] [key=value ...]`, or a sweep with `-m`.

Outputs go to Hydra's job dir (outputs/DATE/TIME or multirun/DATE/TIME/N_overrides): tb/, checkpoints/,
metrics.json, .hydra/ (config and overrides), train.log.
"""
import csc8607  # noqa: F401  (first: csc8607.STARTED_AT times the start-up, heavy imports included)
from csc8607.errors import exit_on_user_error, quiet_interrupts

quiet_interrupts()  # Ctrl-C from here on (imports, config, a first decode): one error line, exit 130
import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from csc8607.sections import run_section  # validates the config before the heavy imports

    return run_section(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
