"""The DAG's planning, without Snakemake: the workflow config (config.yaml as a dict, after its schema check,
workflow/schemas/config.schema.yaml) and a preset -> the training runs, the shared stage folders, one run per
distinct setting, and every job's dans-kgc arguments and inputs. workflow/rules/common.smk is glue around it
(the rules call its methods with their wildcards); the same answers serve cost estimates and tests.

Public API
----------
``plan_jobs(workflow_config, preset) -> list[PlannedJob]``
    Every job `snakemake --config preset=PRESET` runs for all tables and figures (the default target),
    in stage order. Raises ``PlanError`` (one line naming the config key) for a config the DAG refuses.

``PlannedJob`` (a frozen dataclass), fields:
    rule        the Snakemake rule: fetch_dataset, dataset_stats, pretrain, dam, diffusion, tune, train (a train
                job also evaluates the run), diagnose, diagnose_warm_start, report_table, report_figure,
                report_diagnostics
    preset      the preset
    dataset     the dataset (None: dataset_stats and the reports, which span the preset)
    experiment, variant, seed
                of a run (train, diagnose) or of a study (tune: experiment `tuned`, its variant, the seed its
                trials use); None for the shared stages (pretrain, dam, diffusion) and the reports
    backbone    the backbone recipe (dans_kgc/recipes.yaml or config `backbones`) a run's folder names: the
                calibration variant, or the BACKBONE of a crossed variant VARIANT@BACKBONE; None where the
                preset's own model is used
    model       the model (model.name) the job trains or reads: run, study, pretraining, warm start
    key         the folder key of a shared stage (pretrain pkey, DAM key, diffusion dkey; diagnose_warm_start:
                the dkey) or the report's name; None otherwise
    overrides   the dans-kgc overrides (flat dotted keys -> values) the job passes as `--set`, less device
                and data.root (every job gets those) and threads; with `seed` where the job sets one. A tuned
                run leaves out the keys its best.yaml sets. Package defaults fill every other key:
                ``overrides.resolved(job.overrides)`` is the full config (diagnose jobs read the run's own).
    args        the dans-kgc arguments (after `dans-kgc`), less `--set threads=N`; ``job.command`` is the whole
                command line. pretrain and train run through workflow/scripts/dans_kgc_job.py, which adds
                --resume and, for train, `dans-kgc evaluate --run OUT` afterwards.
    inputs      the files the job reads: a dict name -> path (named inputs) or a list (reports, stats)
    outputs     the files it writes (as the rule declares them)
    out         its output folder (stages, runs, studies) or path prefix (diagnoses, reports, table 1)
    log, benchmark
                its log file and Snakemake benchmark record (results/benchmarks/RULE/..., wall time and RSS)
    resources   mem_mb and runtime (minutes, first attempt) from presets.P.resources; gpu for torch rules
    stands_for  a train job: every experiment/variant label its folder stands for (one run per distinct setting)

``Planner(workflow_config)``
    The planning itself, with what the rules ask: runs(preset), canonical(run), run_groups(preset),
    pretrainings / dam_fits / warm_starts(preset, dataset), pkey_of / dam_key_of / dkey_of(preset, overrides),
    the *_args and *_inputs of each rule, table_targets / figure_targets(preset). Construct once per config:
    it checks the config and memoises what it computes.

``load_workflow_config(path, *updates)``
    config.yaml updated by further configs (as --configfile / --config: e.g. {"preset": "quick"}), checked
    against workflow/schemas/config.schema.yaml with its defaults filled in: the dict the Snakefile plans with.
    ``plan_jobs(load_workflow_config("config.yaml"), "quick")`` lists what `--config preset=quick` runs.

``backbone_recipes(workflow_config)``
    The named backbone recipes: dans-kgc's (dans_kgc/recipes.yaml, and those plugins register), then the
    config's own `backbones:` (an entry with a known name replaces that recipe whole). Every reader of them
    goes through this one function.

Layout (config.yaml documents it too)
-------------------------------------
results/{preset}/{dataset}/{pretrain/{pkey},dam/{damkey},diffusion/{dkey}}/,
results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/, results/{preset}/{dataset}/tune/{variant}/,
results/{preset}/{dataset}/diagnostics/{{experiment}/{variant}/seed{seed},warm_start/{dkey}}.{json,md,png},
results/{preset}/tables/, figures/{preset}/, logs/{rule}/{preset}/..., results/benchmarks/{rule}/{preset}/... .

No Snakemake and no torch import here (torch only when the config names plugins, which are imported to check
the model names they add).
"""

from dans_kgc.planning.jobs import PlannedJob, plan_jobs
from dans_kgc.planning.overrides import resolved, shell_join
from dans_kgc.planning.planner import (
    EXPERIMENTS,
    FIGURES,
    STANDS_FOR,
    TABLES,
    PlanError,
    Planner,
    Run,
    backbone_recipes,
)
from dans_kgc.planning.workflow_config import load_workflow_config

__all__ = [
    "EXPERIMENTS",
    "FIGURES",
    "STANDS_FOR",
    "TABLES",
    "PlanError",
    "PlannedJob",
    "Planner",
    "Run",
    "backbone_recipes",
    "load_workflow_config",
    "plan_jobs",
    "resolved",
    "shell_join",
]
