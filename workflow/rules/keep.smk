# Keeping a preset's results (`dans-kgc results keep`, dans_kgc/results_store.py): once every table and figure of
# the preset is built (rule all's targets), the small files of its run folders, stage records, tables and figures
# are copied into reference/{preset}/ with a MANIFEST.json (SHA-256, size and source of each file). It replaces only
# files an earlier keeping made from the same source and deletes nothing; results/{preset}/kept.json lists what it
# did (new, replaced, left alone, skipped, stale).
#   snakemake keep_results --profile profiles/local --config preset=fidelity


localrules:
    keep_results,


rule keep_results:
    input:
        rules.all.input,
    output:
        f"results/{PRESET}/kept.json",
    log:
        f"logs/keep_results/{PRESET}.log",
    benchmark:
        f"results/benchmarks/keep_results/{PRESET}.tsv"
    params:
        preset=PRESET,
    threads: 1
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc results keep --preset {params.preset} --report {output} > {log} 2>&1"
