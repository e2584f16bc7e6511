# Stage 1: Difficulty Assessment Module, once per dataset and per DAM key {damkey} (zeta per entity,
# K-means types): the semantic-source pretraining's pkey, plus _by_<pkey> of the pretraining that gives the
# observed-difficulty target when dam.target_source names one (dans_kgc/planning dam_key_of).


rule dam:
    input:
        unpack(dam_inputs),
    output:
        entities="results/{preset}/{dataset}/dam/{damkey}/entities.csv",
        report="results/{preset}/{dataset}/dam/{damkey}/dam_report.json",
    log:
        "logs/dam/{preset}/{dataset}/{damkey}.log",
    benchmark:
        "results/benchmarks/dam/{preset}/{dataset}/{damkey}.tsv"
    params:
        args=dam_args,
        out=output_dir,
    threads: 1
    resources:
        mem_mb=mem_mb("dam"),
        runtime=runtime("dam"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc dam fit --dataset {wildcards.dataset} --out {params.out} {params.args} "
        "--set threads={threads} > {log} 2>&1"
