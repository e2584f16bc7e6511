# Training runs and their evaluation, one job per run:
# results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/ (run.json, trace.csv,
# model_best.pt, checkpoint.pt, metrics_test.json). The job (workflow/scripts/dans_kgc_job.py)
# runs `dans-kgc train` then `dans-kgc evaluate` in one process (one torch start-up per run),
# resumes from the run folder's checkpoint after an interruption (only when its arguments are
# unchanged), and with config on_divergence: record turns a diverged run (NaN/inf loss) into
# failed-run records so the tables still build and show the cell as missing. To re-evaluate
# finished runs (e.g. after a change of the evaluation code): snakemake -R train; each job
# resumes from its final checkpoint and only evaluates again.


rule train:
    input:
        unpack(train_inputs),
    output:
        run="results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/run.json",
        metrics="results/{preset}/{dataset}/{experiment}/{variant}/seed{seed}/metrics_test.json",
    log:
        "logs/train/{preset}/{dataset}/{experiment}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{preset}/{dataset}/{experiment}/{variant}/seed{seed}.tsv"
    params:
        args=train_args,
        stage="train",
        on_divergence=config["on_divergence"],
    threads: 1
    resources:
        mem_mb=mem_mb("train"),
        runtime=runtime("train"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    script:
        "../scripts/dans_kgc_job.py"
