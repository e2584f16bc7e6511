# Glue of the DANS-KGC DAG: config validation against the schema, then the rules' input, params and resource
# functions, each a call of the planner (dans_kgc/planning: the run matrix preset x dataset x experiment x
# variant x seed, the shared stage folders, one run per distinct setting, each job's dans-kgc arguments and
# inputs), wildcard constraints, the report flags and the SLURM check. No rules here.
#
# Layout (see also config.yaml and dans_kgc/planning): results/{preset}/{dataset}/{pretrain,dam,diffusion}/{key}/,
# results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/, results/{preset}/{dataset}/diagnostics/
# {{experiment}/{variant}/seed{seed},warm_start/{dkey}}.{json,md,png}, results/{preset}/tables/,
# figures/{preset}/, logs/{rule}/{preset}/..., results/benchmarks/{rule}/{preset}/... .
#
# Params functions that take only `wildcards` are Snakemake's rerun triggers; those that take `input` or
# `output` are not (paths derived from the files), so each keeps the signature it has.

import os
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from dans_kgc.planning import EXPERIMENTS, FIGURES, TABLES, PlanError, Planner, Run, shell_join
from dans_kgc.planning.workflow_config import SCHEMA, schema_problem

try:
    validate(config, schema="../schemas/config.schema.yaml")
except WorkflowError:
    # say where: snakemake's message gives the schema's words but not the config key's path
    _problem = schema_problem(config, yaml.safe_load((Path(workflow.basedir) / SCHEMA).read_text()))
    if _problem is None:
        raise
    raise WorkflowError(_problem) from None

# the config checks beyond the schema (datasets, backbones, presets, variants, plugins) happen here
try:
    PLAN = Planner(config)
except PlanError as err:
    raise WorkflowError(str(err)) from None
DATASETS = PLAN.datasets

# The shell commands call `dans-kgc`: put the folder of this Python first on the search
# path, so the workflow also works when started from a virtual environment that is not
# activated (its bin folder holds both snakemake and dans-kgc).
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, os.environ.get("PATH", "")]))

# Dataset mirror: config `data_mirror` wins over the environment variable; either way the
# jobs read it from DANS_KGC_DATA_MIRROR (declared with `envvars:` in the Snakefile, so
# cluster jobs get it too). Empty = download from the canonical URLs.
if config.get("data_mirror"):
    _mirror = os.path.abspath(config["data_mirror"])
    os.environ["DANS_KGC_DATA_MIRROR"] = _mirror
os.environ.setdefault("DANS_KGC_DATA_MIRROR", "")


def _wildcard(wildcards, name):
    if name == "seed":
        return int(wildcards.seed)
    if name == "report":  # a table's or a figure's name
        return getattr(wildcards, "table", None) or wildcards.figure
    return getattr(wildcards, name)


def _planned(method, *names, shell=False):
    """A rule's input or params function: the planner's method called with these wildcards (a shell string when
    `shell`; else as returned, e.g. a list the job script runs). A PlanError (e.g. a requested folder the plan
    does not have) stops the workflow with its one-line message."""
    def get(wildcards):
        try:
            out = method(*(_wildcard(wildcards, n) for n in names))
        except PlanError as err:
            raise WorkflowError(str(err)) from None
        return shell_join(out) if shell else out

    return get


# ------------------------------------------------------------------------------------------
# paths derived from a job's files (no rerun triggers)
# ------------------------------------------------------------------------------------------
def output_prefix(wildcards, output):
    """Output path without extension (the CLI's --out PREFIX)."""
    return str(Path(output[0]).with_suffix(""))


def output_dir(wildcards, output):
    return str(Path(output[0]).parent)


def input_dir(name):
    """The folder of a named input (a stage's output folder, the CLI's --pretrained DIR)."""
    def get(wildcards, input):
        return str(Path(input[name]).parent)

    return get


def report_args(wildcards, input):
    """`dans-kgc report` arguments: --runs lists the folders of the job's inputs, so (a params function of
    `input`) no rerun trigger."""
    return _planned(PLAN.report_args, "preset", "report", shell=True)(wildcards)


# ------------------------------------------------------------------------------------------
# the rules' input and params functions (workflow/rules/*.smk): the planner's answers
# ------------------------------------------------------------------------------------------
_STAGE = ("preset", "dataset")
_RUN = ("preset", "dataset", "experiment", "variant", "seed")
fetch_sets = _planned(PLAN.fetch_args, *_STAGE, shell=True)
fetch_checksums = _planned(PLAN.fetch_checksums, "dataset")
stats_inputs = _planned(PLAN.stats_inputs, "preset")
stats_names = _planned(lambda preset: " ".join(PLAN.preset_datasets(preset)), "preset")
stats_sets = _planned(PLAN.stats_args, "preset", shell=True)
pretrain_args = _planned(PLAN.pretrain_args, *_STAGE, "pkey")
dam_inputs = _planned(PLAN.dam_inputs, *_STAGE, "damkey")
dam_args = _planned(PLAN.dam_args, *_STAGE, "damkey", shell=True)
diffusion_inputs = _planned(PLAN.diffusion_inputs, *_STAGE, "dkey")
diffusion_args = _planned(PLAN.diffusion_args, *_STAGE, "dkey", shell=True)
train_inputs = _planned(lambda *w: PLAN.train_inputs(Run(*w)), *_RUN)
train_args = _planned(lambda *w: PLAN.train_args(Run(*w)), *_RUN)
tune_inputs = _planned(PLAN.tune_inputs, *_STAGE, "variant")
tune_args = _planned(PLAN.tune_args, *_STAGE, "variant", shell=True)
report_inputs = _planned(PLAN.report_inputs, "preset", "report")
diagnose_args = _planned(PLAN.diagnose_args, "preset", shell=True)
diagnose_warm_start_inputs = _planned(PLAN.diagnose_warm_start_inputs, *_STAGE, "dkey")
diagnose_warm_start_args = _planned(PLAN.diagnose_warm_start_args, *_STAGE, "dkey", shell=True)
report_diagnostics_inputs = _planned(PLAN.report_diagnostics_inputs, "preset")
table_targets = PLAN.table_targets
figure_targets = PLAN.figure_targets


# ------------------------------------------------------------------------------------------
# resources and threads
# ------------------------------------------------------------------------------------------
def mem_mb(group):
    def get(wildcards, attempt):
        return PLAN.resources(wildcards.preset, group)["mem_mb"]

    return get


def runtime(group):
    """Minutes; grows with the attempt number (profiles set `retries`)."""
    def get(wildcards, attempt):
        return PLAN.resources(wildcards.preset, group)["runtime"] * attempt

    return get


# torch-using jobs ask for one GPU when the config says device: cuda
GPUS = 1 if config["device"] == "cuda" else 0


def _alternatives(names):
    return "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))


wildcard_constraints:
    preset=_alternatives(config["presets"]),
    dataset=_alternatives(DATASETS),
    experiment=_alternatives(EXPERIMENTS),
    seed=r"\d+",
    variant=r"[A-Za-z0-9][A-Za-z0-9_.@-]*",
    dkey=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    pkey=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    table=_alternatives(TABLES),
    figure=_alternatives(FIGURES),


# ------------------------------------------------------------------------------------------
# Snakemake's report (snakemake --report report.zip): the targets of all / all_tables / all_figures flagged
# with report(), one caption per table or figure kind (workflow/report/KIND.rst)
# ------------------------------------------------------------------------------------------
def reported(paths):
    """The targets, with every table (.csv) and figure (.png) flagged for the report."""
    out = []
    for p in paths:
        path = Path(p)
        if path.suffix == ".csv" and path.parent.name == "tables":
            out.append(report(p, caption=f"workflow/report/{path.stem}.rst", category="Tables",
                              labels={"table": path.stem}))
        elif path.suffix == ".png" and p.startswith("figures/"):
            out.append(report(p, caption=f"workflow/report/{path.stem}.rst", category="Figures",
                              subcategory="Paper figures", labels={"figure": path.stem}))
        elif path.suffix == ".png" and "diagnostics" in path.parts:
            name = Path(*path.with_suffix("").parts[path.parts.index("diagnostics") + 1:]).as_posix()
            out.append(report(p, caption="workflow/report/diagnosis.rst", category="Figures",
                              subcategory="Diagnoses", labels={"dataset": path.parts[2], "diagnosis": name}))
        else:
            out.append(p)
    return out


# ------------------------------------------------------------------------------------------
# SLURM status polling (onstart, Snakefile)
# ------------------------------------------------------------------------------------------
# Without slurmdbd the profiles poll job states with `squeue`. slurmctld lists a finished job for
# MinJobAge seconds after it ends; snakemake-executor-plugin-slurm counts a job that squeue no longer
# lists as still queued, so a job forgotten before the next status check is waited for forever. The
# plugin's checks are at most 180 s apart (its max_sleep_time); below 3 x the first interval it switches
# to sacct, which fails without accounting. So MinJobAge must exceed both, with a margin for the queries.
SLURM_MAX_POLL_GAP = 180
SLURM_POLL_MARGIN = 60


def slurm_min_job_age():
    """MinJobAge of the cluster in seconds (`scontrol show config`), None when it cannot be read."""
    import subprocess

    try:
        text = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^MinJobAge\s*=\s*(\d+)\s*(sec|min|hour)?", text, re.MULTILINE)
    if not m:
        return None
    return int(m.group(1)) * {"min": 60, "hour": 3600}.get(m.group(2), 1)


def check_slurm_polling():
    """Stop before submitting anything when squeue could forget a finished job before Snakemake polls."""
    plugin, settings = workflow.executor_plugin, workflow.executor_settings
    if plugin is None or plugin.name != "slurm" or getattr(settings, "status_command", None) != "squeue":
        return
    age = slurm_min_job_age()
    init = getattr(settings, "init_seconds_before_status_checks", None) or 40
    needed = max(SLURM_MAX_POLL_GAP, 3 * init) + SLURM_POLL_MARGIN
    if age is not None and age < needed:
        raise WorkflowError(
            f"SLURM MinJobAge={age}s is below {needed}s: squeue would forget finished jobs before Snakemake's "
            f"next status check (up to {SLURM_MAX_POLL_GAP}s apart) and the workflow would wait for them forever; "
            "set MinJobAge=3600 in slurm.conf and run `scontrol reconfigure`, or poll with "
            "--slurm-status-command sacct where slurmdbd accounting is set up")
