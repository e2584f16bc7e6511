# Diagnostics of the generated negatives (`dans-kgc diagnose`, dans_kgc/diagnostics.py): denoiser
# quality (noise MSE per step vs predicting zero), hardness per band (active share, P(outscore),
# entity quantile, snapped rank, distances) and false negatives across samplers, for every
# diffusion-using training run (sampler dans or dhns) and every diffusion warm start on its
# pretrained backbone (config `diagnose`: triples, seed, experiments, warm_starts). Outputs:
#   results/{preset}/{dataset}/diagnostics/{experiment}/{variant}/seed{seed}.{json,md,png}
#   results/{preset}/{dataset}/diagnostics/warm_start/{dkey}.{json,md,png}
#   results/{preset}/tables/diagnostics.{csv,md}   (report plugin `diagnostics`: the diagnoses of the table
#                                                   experiments' runs and their warm starts, one table per preset)
# all_tables builds the diagnoses of the runs the tables read (main, ablation, calibration) and the table;
# all_figures those of the sensitivity runs (trained for the sensitivity figure only).
# A run diagnoses its last checkpoint with its own config; a warm start with the config recorded in
# its diffusion_report.json.


rule diagnose:
    input:
        run="results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/run.json",
    output:
        multiext("results/{preset}/{dataset}/diagnostics/{experiment}/{variant}/seed{seed}", ".json", ".md", ".png"),
    log:
        "logs/diagnose/{preset}/{dataset}/{experiment}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/diagnose/{preset}/{dataset}/{experiment}/{variant}/seed{seed}.tsv"
    params:
        run=input_dir("run"),
        prefix=output_prefix,
        args=diagnose_args,
    threads: 1
    resources:
        mem_mb=mem_mb("diagnose"),
        runtime=runtime("diagnose"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc diagnose --run {params.run} --out {params.prefix} {params.args} --set threads={threads} "
        "> {log} 2>&1"


rule diagnose_warm_start:
    input:
        unpack(diagnose_warm_start_inputs),
    output:
        multiext("results/{preset}/{dataset}/diagnostics/warm_start/{dkey}", ".json", ".md", ".png"),
    log:
        "logs/diagnose_warm_start/{preset}/{dataset}/{dkey}.log",
    benchmark:
        "results/benchmarks/diagnose_warm_start/{preset}/{dataset}/{dkey}.tsv"
    params:
        prefix=output_prefix,
        args=diagnose_warm_start_args,
    threads: 1
    resources:
        mem_mb=mem_mb("diagnose"),
        runtime=runtime("diagnose"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc diagnose --out {params.prefix} {params.args} --set threads={threads} > {log} 2>&1"


rule report_diagnostics:
    input:
        report_diagnostics_inputs,
    output:
        multiext("results/{preset}/tables/diagnostics", ".csv", ".md", ".provenance.json"),
    log:
        "logs/report_diagnostics/{preset}.log",
    benchmark:
        "results/benchmarks/report_diagnostics/{preset}.tsv"
    params:
        prefix=output_prefix,
    threads: 1
    resources:
        mem_mb=mem_mb("light"),
        runtime=runtime("light"),
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc report diagnostics --runs {input} --out {params.prefix} > {log} 2>&1"
