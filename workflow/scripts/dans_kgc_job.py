"""Snakemake `script:` for the resumable dans-kgc stages: pretrain, and train + evaluate.

It runs the dans-kgc CLI in this interpreter (`dans_kgc.cli.main`, output to the job's log;
one torch import per job instead of one per command) and adds what a plain CLI call cannot
know:

* resume: `--resume` is passed when the run folder holds a checkpoint written with the
  same arguments (recorded in `workflow_args.json`); after a change of arguments the stale
  checkpoint is removed and the run starts fresh. So a job killed mid-training (node lost,
  SIGKILL, then `--rerun-incomplete`) continues from its last checkpoint, not from epoch 0.
* train jobs then evaluate the run (`dans-kgc evaluate --run DIR` -> metrics_test.json).
* divergence (config `on_divergence: record`): dans-kgc returns 3 when the loss became
  NaN/inf; the job then writes failed-run records as its outputs (`run.json` and
  `metrics_test.json` with "status": "failed", the error and null metrics) and succeeds,
  so the tables still build and show the cell as missing. `on_divergence: fail` fails it.
"""
import contextlib
import json
import shlex
import sys
import time
import traceback
from pathlib import Path

DIVERGED = 3  # dans-kgc's exit code for TrainingDivergedError
CHECKPOINT = "checkpoint.pt"
ARGS_RECORD = "workflow_args.json"
METRIC_KEYS = ("mrr", "hits@1", "hits@3", "hits@10")
STANDS_FOR = "stands_for"  # common.smk's tag of a shared run folder


def log_line(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [workflow] {text}", file=sys.stderr, flush=True)


def run_cli(args: list[str]) -> int:
    """`dans-kgc ARGS` in this process; returns its exit code (exceptions logged, code 1)."""
    from dans_kgc.cli import main

    log_line("$ dans-kgc " + " ".join(shlex.quote(a) for a in args))
    try:
        return int(main(args) or 0)
    except SystemExit as exit_:  # argparse errors
        return exit_.code if isinstance(exit_.code, int) else 1
    except Exception:  # noqa: BLE001 - the traceback goes to the job's log
        traceback.print_exc()
        return 1


def last_error(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if " ERROR " in ln or "Error" in ln:
            return ln
    return lines[-1] if lines else "(empty log)"


def tags_of(args: list[str]) -> dict:
    return dict(v.split("=", 1) for flag, v in zip(args, args[1:]) if flag == "--tag" and "=" in v)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def without_labels(args: list[str]) -> list[str]:
    """The arguments less the `--tag stands_for=...` label (which experiments/variants a shared run folder
    stands for): a change of it alone resumes from the final checkpoint, so the run is only re-labelled and
    evaluated again, not retrained."""
    out, skip = [], False
    for flag, value in zip(args, args[1:] + [""]):
        if skip:
            skip = False
            continue
        if flag == "--tag" and value.startswith(STANDS_FOR + "="):
            skip = True
            continue
        out.append(flag)
    return out


def resume_flag(run_dir: Path, args: list[str]) -> list[str]:
    """`--resume` if the checkpoint here was written with these arguments, else start fresh."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record, checkpoint = run_dir / ARGS_RECORD, run_dir / CHECKPOINT
    previous = json.loads(record.read_text()) if record.exists() else None
    if checkpoint.exists():
        if previous is not None and without_labels(previous) == without_labels(args):
            log_line(f"resuming from {checkpoint} (written with the same arguments)")
        else:
            log_line(f"removing {checkpoint}: written with other arguments; starting fresh")
            checkpoint.unlink()
    write_json(record, args)
    return ["--resume"]


def record_failure(smk, args: list[str], rc: int, error: str) -> None:
    info = {"status": "failed", "stage": smk.params.stage, "error": error, "exit_code": rc,
            "dataset": smk.wildcards.dataset, "seed": int(smk.wildcards.seed), "tags": tags_of(args)}
    write_json(Path(smk.output.run), info)
    write_json(Path(smk.output.metrics), {**info, "split": "test", **{k: None for k in METRIC_KEYS}})


def job(smk, log_path: Path) -> int:
    stage = smk.params.stage
    args = [str(a) for a in smk.params.args]
    run_dir = Path(smk.output.run).parent
    rc = run_cli(args + resume_flag(run_dir, args) + ["--set", f"threads={smk.threads}"])
    if rc == DIVERGED and stage == "train" and smk.params.on_divergence == "record":
        sys.stderr.flush()
        error = last_error(log_path)
        log_line(f"run diverged; recorded as a failed run (config on_divergence: record): {error}")
        record_failure(smk, args, rc, error)
        return -DIVERGED
    if rc != 0 or stage != "train":
        return rc
    plugins = [a for flag, value in zip(args, args[1:]) if flag == "--plugin" for a in (flag, value)]
    return run_cli(["evaluate", "--run", str(run_dir), "--quiet", *plugins])  # a plugin backbone must load


def main(smk) -> int:
    log_path = Path(smk.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        rc = job(smk, log_path)
    stage, where = smk.params.stage, Path(smk.output[0]).parent
    if rc == -DIVERGED:
        print(f"dans-kgc {stage} {where}: DIVERGED, recorded as a failed run: {last_error(log_path)}", file=sys.stderr)
        return 0
    if rc != 0:
        print(f"dans-kgc {stage} {where} failed (exit code {rc}): {last_error(log_path)} (log: {log_path})",
              file=sys.stderr)
    return rc


sys.exit(main(snakemake))  # noqa: F821 - injected by Snakemake's script directive
