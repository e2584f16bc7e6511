# DANS-KGC reproduction DAG. Stages: fetch data -> TransE pretraining -> DAM -> diffusion
# warm start -> [equal-budget tuning ->] training runs (+ evaluation) -> diagnostics of the negatives -> tables and
# figures. Every job calls the
# `dans-kgc` CLI; what each job does is planned by dans_kgc/planning (workflow/rules/common.smk calls it),
# the settings in config.yaml
# (layout of results/, figures/, logs/ documented there).
#
#   snakemake --profile profiles/local                        # preset paper (default)
#   snakemake --profile profiles/local --config preset=quick  # < 20 min on 2 CPU cores
#   snakemake --profile profiles/local all_tables             # tables only
#   snakemake --profile profiles/slurm --config preset=paper  # on a SLURM cluster
from snakemake.utils import min_version

min_version("8.10")


configfile: "config.yaml"


include: "workflow/rules/common.smk"


# passed on to cluster jobs; set from config `data_mirror` when that is given (common.smk)
envvars:
    "DANS_KGC_DATA_MIRROR",


include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/dam.smk"
include: "workflow/rules/diffusion.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/diagnose.smk"
include: "workflow/rules/report.smk"


PRESET = config["preset"]


# SLURM: squeue must still list finished jobs when Snakemake polls (common.smk: check_slurm_polling)
onstart:
    check_slurm_polling()


# cheap bookkeeping jobs stay on the submit host under a cluster executor
localrules:
    all,
    all_tables,
    all_figures,
    fetch_dataset,
    dataset_stats,
    report_table,
    report_figure,
    report_diagnostics,


# `snakemake --report report.zip`: the tables and figures of these targets, with their captions
# (workflow/report/*.rst; common.smk: reported)
report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        reported(table_targets(PRESET)),
        reported(figure_targets(PRESET)),


rule all_tables:
    input:
        reported(table_targets(PRESET)),


rule all_figures:
    input:
        reported(figure_targets(PRESET)),


include: "workflow/rules/keep.smk"
