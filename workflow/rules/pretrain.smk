# Stage 0: TransE pretraining, once per dataset. Resumable: a killed job restarts from the
# run folder's last checkpoint (workflow/scripts/dans_kgc_job.py passes --resume).


rule pretrain:
    input:
        data="results/{preset}/{dataset}/data/fetch.txt",
    output:
        run="results/{preset}/{dataset}/pretrain/run.json",
    log:
        "logs/pretrain/{preset}/{dataset}.log",
    benchmark:
        "results/benchmarks/pretrain/{preset}/{dataset}.tsv"
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
