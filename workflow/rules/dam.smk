# Stage 1: Difficulty Assessment Module, once per dataset and per semantic-source pretraining {pkey}
# (zeta per entity, K-means types).


rule dam:
    input:
        pretrain="results/{preset}/{dataset}/pretrain/{pkey}/run.json",
    output:
        entities="results/{preset}/{dataset}/dam/{pkey}/entities.csv",
        report="results/{preset}/{dataset}/dam/{pkey}/dam_report.json",
    log:
        "logs/dam/{preset}/{dataset}/{pkey}.log",
    benchmark:
        "results/benchmarks/dam/{preset}/{dataset}/{pkey}.tsv"
    params:
        pretrained=input_dir("pretrain"),
        out=output_dir,
        sets=dam_sets,
    threads: 1
    resources:
        mem_mb=mem_mb("dam"),
        runtime=runtime("dam"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc dam fit --dataset {wildcards.dataset} --pretrained {params.pretrained} --out {params.out} "
        "{params.sets} --set threads={threads} > {log} 2>&1"
