# Stage 0: pretraining, once per dataset and per distinct pretraining {pkey} (dans_kgc/planning: pkey_of):
# The base reading's TransE (DAM's semantic source) and the configured backbone with its own recipe (its
# initialisation and the space of its diffusion warm start). Resumable: a killed job restarts from the
# run folder's last checkpoint (workflow/scripts/dans_kgc_job.py passes --resume).


rule pretrain:
    input:
        data="results/{preset}/{dataset}/data/fetch.txt",
    output:
        run="results/{preset}/{dataset}/pretrain/{pkey}/run.json",
    log:
        "logs/pretrain/{preset}/{dataset}/{pkey}.log",
    benchmark:
        "results/benchmarks/pretrain/{preset}/{dataset}/{pkey}.tsv"
    params:
        args=pretrain_args,
        stage="pretrain",
        on_divergence="fail",
    threads: 1
    resources:
        mem_mb=mem_mb("pretrain"),
        runtime=runtime("pretrain"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    script:
        "../scripts/dans_kgc_job.py"
