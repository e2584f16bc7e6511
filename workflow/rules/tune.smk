# Equal-budget hyper-parameter search, one job per study: results/{preset}/{dataset}/tune/{variant}/ (study.db,
# study.json, best.yaml, trials/NNNN/), for every variant of a preset's `tuned` experiment (dataset x backbone x
# sampler). The trials read the same stage outputs as the variant's training runs (dans_kgc/planning stage_inputs) and
# get the preset's tune.* budget (the same for every sampler). An interrupted job resumes its study (the SQLite
# file is no declared output, so Snakemake keeps it); the `tuned` runs read best.yaml (train.smk).


rule tune:
    input:
        unpack(tune_inputs),
    output:
        best="results/{preset}/{dataset}/tune/{variant}/best.yaml",
        study="results/{preset}/{dataset}/tune/{variant}/study.json",
    log:
        "logs/tune/{preset}/{dataset}/{variant}.log",
    benchmark:
        "results/benchmarks/tune/{preset}/{dataset}/{variant}.tsv"
    params:
        args=tune_args,
    threads: 1
    resources:
        mem_mb=mem_mb("tune"),
        runtime=runtime("tune"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc {params.args} --set threads={threads} > {log} 2>&1"
