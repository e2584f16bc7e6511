# Tables (results/{preset}/tables/) and figures (figures/{preset}/) built from run folders
# only; each reads just the runs it shows, so a changed run rebuilds only the reports that
# use it. Missing or failed runs appear as marked cells (dans_kgc/reports).


rule report_table:
    input:
        report_inputs,
    output:
        multiext("results/{preset}/tables/{table}", ".csv", ".md", ".tex", ".provenance.json"),
    log:
        "logs/report_table/{preset}/{table}.log",
    benchmark:
        "results/benchmarks/report_table/{preset}/{table}.tsv"
    params:
        args=report_args,
        prefix=output_prefix,
    threads: 1
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc report {params.args} --out {params.prefix} > {log} 2>&1"


rule report_figure:
    input:
        report_inputs,
    output:
        multiext("figures/{preset}/{figure}", ".png", ".pdf", ".provenance.json"),
    log:
        "logs/report_figure/{preset}/{figure}.log",
    benchmark:
        "results/benchmarks/report_figure/{preset}/{figure}.tsv"
    params:
        args=report_args,
        prefix=output_prefix,
    threads: 1
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc report {params.args} --out {params.prefix} > {log} 2>&1"
