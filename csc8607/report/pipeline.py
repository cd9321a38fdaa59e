"""`make report`: every report section in the report's order (csc8607.sections.REPORTED), then `python report.py`.

Runs land in the current directory (outputs/, multirun/, artifacts/, report/report.md). Arguments go to every
train.py command; without any, `trainer.threads=1` (fastest on a small shared CPU). A section that takes an earlier
one's run (`Section.after`: M5's LR from M4, M6 and M7 from M5's sweep) gets that run's dir, fixed in advance.
  python -m csc8607.report.pipeline                       # embedded digits, < 3 min on 2 cores
  python -m csc8607.report.pipeline data=tiny_imagenet    # another dataset, all threads
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from csc8607.sections import BY_NAME, REPORTED, Section

REPO = Path(__file__).resolve().parents[2]


def run_dir(section: Section, stamp: str) -> str:
    """Where `make report` puts a run that a later section reads: a sweep dir under multirun/, else outputs/."""
    return f"{'multirun' if section.sweep else 'outputs'}/{stamp}-{section.name}"


def step(section: Section, stamp: str, args: list[str]) -> tuple[str, list[str]]:
    """(label, command line after the interpreter) of one section's step."""
    questions = section.questions
    shown = f" ({'–'.join(dict.fromkeys((questions[0], questions[-1])))})" if questions else ""
    if section.script != "train.py":  # evaluate.py: its own command (train.py's keys are not its keys)
        command = section.command.split()[1:]
        return " ".join(command) + shown, command
    chained = [f"{key}={run_dir(BY_NAME[name], stamp)}" for key, name in section.takes]
    read_later = any(name == section.name for s in REPORTED for _, name in s.takes)
    where = [f"hydra.{'sweep' if section.sweep else 'run'}.dir={run_dir(section, stamp)}"] if read_later else []
    command = [section.script, f"experiment={section.name}", *chained]
    return " ".join(command) + shown, command + where + args


def steps(stamp: str, args: list[str]) -> list[tuple[str, list[str]]]:
    """Every report section in the report's order, then report.py."""
    return [step(section, stamp, args) for section in REPORTED] + [("report.py", ["report.py"])]


# what each step sets itself: the same key from the command line would turn every step into one section, one
# sweep or one dir (they ran for minutes before the step that noticed)
OWN_KEYS = ("experiment", "section", "resume", "hydra.run.dir", "hydra.sweep.dir", "hydra.mode")


def refused(args: list[str]) -> str | None:
    """Why these arguments cannot go to every step (a flag, or a key the steps set), or None."""
    for arg in args:
        key = arg.split("=", 1)[0].lstrip("+~")
        if arg.startswith("-") or key in OWN_KEYS:
            return (f"{arg}: make report passes its arguments to every section's train.py command, which sets that "
                    "itself; give settings of the experiment (data=..., model=..., trainer.threads=...)")
    return None


def main(args: list[str]) -> int:
    """Each step in turn with a progress line on stderr; the first failing step (Ctrl-C included: the step stops
    with its own one-line error) ends the pipeline with its exit code."""
    why = refused(args)
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)  # the running step handles Ctrl-C and says so
    stamp = time.strftime("%Y-%m-%d/%H-%M-%S")
    todo = steps(stamp, args or ["trainer.threads=1"])
    for i, (label, command) in enumerate(todo, 1):
        print(f"== make report: step {i}/{len(todo)}: {label} ({time.strftime('%H:%M:%S')})", file=sys.stderr,
              flush=True)
        code = subprocess.run([sys.executable, str(REPO / command[0]), *command[1:]]).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
