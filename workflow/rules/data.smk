# Stage "data": fetch each dataset (mirror folder or canonical URL; every file checked
# against the registry's SHA-256 / git blob id by the CLI) and the dataset statistics table.


rule fetch_dataset:
    output:
        ensure("results/{preset}/{dataset}/data/fetch.txt", non_empty=True),
    log:
        "logs/fetch_dataset/{preset}/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch_dataset/{preset}/{dataset}.tsv"
    params:
        sets=fetch_sets,
        checksums=fetch_checksums,
    threads: 1
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    retries: 2
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc data fetch {wildcards.dataset} {params.sets} > {output} 2> {log}"


rule dataset_stats:
    input:
        stats_inputs,
    output:
        multiext("results/{preset}/tables/table1_datasets", ".csv", ".md"),
    log:
        "logs/dataset_stats/{preset}.log",
    benchmark:
        "results/benchmarks/dataset_stats/{preset}.tsv"
    params:
        names=stats_names,
        prefix=output_prefix,
        sets=stats_sets,
    threads: 1
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc data stats {params.names} --out {params.prefix} {params.sets} > {log} 2>&1"
