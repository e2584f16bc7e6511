"""What the Snakemake DAG plans, as stable text: every job of the `all`, `all_tables` and `all_figures` targets
with its wildcards, threads, resources, inputs, outputs, log, benchmark, params and shell command.

One snapshot per case (every preset of config.yaml, plus variations of backbones, per-dataset recipes, your own
datasets and plugins), committed under tests/data/plan_snapshot/<case>.txt. tests/test_plan_snapshot.py plans
each case again and compares: a change of the planning code that changes any job's arguments, inputs or
outputs shows as a diff. After an intended change of the plan (config.yaml, dans_kgc/defaults.yaml, the
planner), write the snapshots again and review their diff:

    PYTHONPATH=. DANS_KGC_DATA_MIRROR=... python tests/plan_snapshot.py --write            # every case
    PYTHONPATH=. DANS_KGC_DATA_MIRROR=... python tests/plan_snapshot.py --write tiny quick # some

Each case is planned in its own process (``--plan CASE WORKDIR``) through Snakemake's Python API, in a
temporary copy of the workflow (workflow_helpers.copy_workflow): nothing runs, nothing is written to the
checkout. Absolute paths of the working copy are written as <WORKDIR>.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_helpers import BUILT_IN_RECIPES, REPO, built_in_recipe_with, copy_workflow, env, write_yaml

SNAPSHOT_DIR = REPO / "tests" / "data" / "plan_snapshot"
TARGETS = ("all", "all_tables", "all_figures")
# the resources the workflow sets (common.smk); the rest are Snakemake's
RESOURCES = ("mem_mb", "runtime", "gpu")


def _make_kg(workdir: Path) -> str:
    from test_custom_dataset import make_kg

    return str(make_kg(workdir / "mykg"))


def _example_plugin(workdir: Path) -> str:
    dest = workdir / "plugins" / "my_sampler.py"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "examples" / "my_sampler.py", dest)
    return str(dest)


CROSSED_TINY = {
    "backbones": ["redgnn", "transe"],
    "experiments": {"main": {"variants": ["uniform", "uniform_term", "dhns", "dans"]}},
}
# case -> function(workdir) -> extra config (written as a --configfile); the presets of config.yaml are added
VARIATIONS: dict[str, Callable[[Path], dict]] = {
    # a preset's backbone list: every main variant on RED-GNN and TransE (the diffusion samplers too)
    "tiny+backbones": lambda wd: {"presets": {"tiny": CROSSED_TINY}},
    # samplers a backbone cannot run leave its (variant, backbone) pairs out
    "tiny+unsupported_samplers": lambda wd: {
        "unsupported_samplers": {"redgnn": {"samplers": ["dans", "dhns"], "reason": "a test"}},
        "presets": {"tiny": CROSSED_TINY},
    },
    # a recipe's per_dataset entry: its own Stage 0 and warm start per dataset; calibration on two datasets. The
    # config's recipe replaces the built-in redgnn (its keys, smaller, and a per_dataset entry of its own)
    "tiny+per_dataset_recipe": lambda wd: {
        "backbones": {
            "redgnn": built_in_recipe_with(
                "redgnn",
                {
                    "model.dim": 8,
                    "model.gnn_layers": 2,
                    "train.batch_size": 300,
                    "per_dataset": {"nations": {"model.dim": 4, "model.activation": "relu"}},
                },
            )
        },
        "presets": {
            "tiny": {
                "datasets": ["umls", "nations"],
                "backbones": ["redgnn"],
                "experiments": {
                    "calibration": {"variants": ["redgnn"]},
                    "main": {"variants": ["uniform", "dans"]},
                },
            }
        },
    },
    # every backbone crossed with main (draw-only samplers left out on 1-N ones) and alone in calibration
    "tiny+every_backbone": lambda wd: {
        "presets": {
            "tiny": {
                "backbones": list(BUILT_IN_RECIPES),
                "experiments": {
                    "main": {"variants": ["uniform", "bernoulli", "dhns", "dans"]},
                    "calibration": {},
                    "ablation": {"variants": ["wo_dam"]},
                    "dam_inputs": {"variants": ["short_transe"]},
                },
            }
        }
    },
    # your own dataset (config `datasets`): its fetch passes data.custom and its files' checksums
    "tiny+custom_dataset": lambda wd: {
        "datasets": {"mykg": {"path": _make_kg(wd), "protocol": "kge"}},
        "presets": {"tiny": {"datasets": ["mykg", "umls"]}},
    },
    # a plugin sampler as a main variant, on your own dataset: --plugin on every job
    "tiny+plugin": lambda wd: {
        "plugins": [_example_plugin(wd)],
        "datasets": {"mykg": {"path": _make_kg(wd)}},
        "experiments": {"main": {"variants": {"hardest_of_k": {"train.sampler": "hardest_of_k"}}}},
        "presets": {
            "tiny": {
                "datasets": ["mykg"],
                "experiments": {"main": {"variants": ["uniform", "hardest_of_k"]}},
            }
        },
    },
    # the top-level diagnose settings (triples, seed, no warm-start diagnoses) and two seeds
    "tiny+diagnose_settings": lambda wd: {
        "diagnose": {"triples": 50, "seed": 3, "warm_starts": False},
        "presets": {"tiny": {"seeds": [0, 1]}},
    },
}


def presets() -> list[str]:
    return list(yaml.safe_load((REPO / "config.yaml").read_text())["presets"])


def cases() -> list[str]:
    return presets() + list(VARIATIONS)


def preset_of(case: str) -> str:
    return case.split("+", 1)[0]


def snapshot_path(case: str) -> Path:
    return SNAPSHOT_DIR / f"{case}.txt"


# ------------------------------------------------------------------------------------------
# planning one case (in its own process: Snakemake keeps global state)
# ------------------------------------------------------------------------------------------
def _fmt_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return shlex.join(str(v) for v in value)
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=True, width=10**6).strip()
    return str(value)


def _named(files: Any) -> list[str]:
    """A Snakemake Namedlist as 'name=path' (named items) and 'path' (the others), in its order."""
    names = {}
    for name, (start, end) in files._names.items():
        for i in range(start, start + 1 if end is None else end):
            names[i] = name
    out = []
    for i, f in enumerate(files):
        text = f"{names[i]}={f}" if i in names else str(f)
        report = getattr(f, "flags", {}).get("report")
        if report:  # the caption, category and labels of `snakemake --report` (common.smk `reported`)
            fields = report._asdict() if hasattr(report, "_asdict") else {"value": report}
            shown = {k: v if isinstance(v, dict) else str(v) for k, v in fields.items() if v not in (None, [], {})}
            text += f" [report {_fmt_value(shown)}]"
        out.append(text)
    return out


def describe_job(job: Any) -> list[str]:
    lines = [f"rule {job.rule.name}"]
    if job.wildcards_dict:
        lines.append("  wildcards: " + " ".join(f"{k}={v}" for k, v in sorted(job.wildcards_dict.items())))
    lines.append(f"  threads: {job.threads}")
    res = {k: job.resources[k] for k in RESOURCES if k in job.resources.keys()}  # noqa: SIM118 - a Namedlist
    if res:
        lines.append("  resources: " + " ".join(f"{k}={v}" for k, v in res.items()))
    for what in ("input", "output", "log", "benchmark"):
        files = getattr(job, what)
        if what == "benchmark":
            if files:
                lines.append(f"  benchmark: {files}")
            continue
        for item in _named(files):
            lines.append(f"  {what}: {item}")
    # a params function of input or output files is no rerun trigger for Snakemake: say which are
    derived = {name for name, item in job.rule.params.items() if job.rule._is_deriving_function(item)}
    for name, value in job.params.items():
        lines.append(f"  params.{name}{' (from files)' if name in derived else ''}: {_fmt_value(value)}")
    if job.shellcmd:
        lines.append("  shell: " + " ".join(job.shellcmd.split()))
    if job.rule.script:
        lines.append(f"  script: {job.rule.script}")
    return lines


def plan(case: str, workdir: Path) -> str:
    """The snapshot text of one case, planned in ``workdir`` (a copy of the workflow)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    configfiles = [workdir / "config.yaml"]
    if case in VARIATIONS:
        configfiles.append(write_yaml(workdir / "variation.yaml", VARIATIONS[case](workdir)))
    config = ConfigSettings(configfiles=configfiles, config={"preset": preset_of(case)})
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=config,
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        wf_api.dag(DAGSettings(targets=set(TARGETS), forceall=True))
        # the API has no job listing: build the DAG as `snakemake --dag` does
        workflow = wf_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        blocks = sorted((job.rule.name, [str(f) for f in job.output], describe_job(job)) for job in workflow.dag.jobs)
    text = "\n".join(line for _, _, block in blocks for line in block) + "\n"
    return text.replace(str(workdir.resolve()), "<WORKDIR>").replace(str(workdir), "<WORKDIR>")


def parse_snapshot(text: str) -> list[dict[str, Any]]:
    """The jobs of a snapshot: {"rule", "wildcards": {..}, "input": [..], "output": [..], "log": [..],
    "params": {name: text}, and "threads", "resources", "benchmark", "shell" or "script" as text}."""
    jobs: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("rule "):
            jobs.append(
                {
                    "rule": line[5:],
                    "wildcards": {},
                    "input": [],
                    "output": [],
                    "log": [],
                    "params": {},
                }
            )
            continue
        key, _, value = line.strip().partition(": ")
        job = jobs[-1]
        if key == "wildcards":
            job["wildcards"] = dict(item.split("=", 1) for item in value.split())
        elif key in ("input", "output", "log"):
            job[key].append(value)
        elif key.startswith("params."):
            job["params"][key.removeprefix("params.").removesuffix(" (from files)")] = value
        else:
            job[key] = value
    return jobs


def plan_in_subprocess(case: str, tmp_root: Path, timeout: float = 300) -> str:
    """Plan one case in a fresh copy of the workflow, in its own Python process."""
    workdir = copy_workflow(tmp_root / case.replace("+", "_"))
    proc = subprocess.run(
        [sys.executable, __file__, "--plan", case, str(workdir)],
        env=env(),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"planning case {case} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return (workdir / "plan.txt").read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", nargs=2, metavar=("CASE", "WORKDIR"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the snapshots (else: print which differ)",
    )
    parser.add_argument("cases", nargs="*", help=f"cases (default: all of {', '.join(cases())})")
    args = parser.parse_args(argv)
    if args.plan:
        case, workdir = args.plan
        text = plan(case, Path(workdir))
        (Path(workdir) / "plan.txt").write_text(text)
        return 0
    unknown = [c for c in args.cases if c not in cases()]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)} (known: {', '.join(cases())})")
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases or cases():
            text = plan_in_subprocess(case, Path(tmp))
            path = snapshot_path(case)
            same = path.exists() and path.read_text() == text
            if args.write and not same:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            differ += [] if same else [case]
            print(
                f"{case}: {text.count(chr(10) + 'rule ') + 1} jobs, {'unchanged' if same else 'differs'}"
                + (" (written)" if args.write and not same else "")
            )
    return 1 if differ and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
