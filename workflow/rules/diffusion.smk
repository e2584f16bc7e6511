# Stage 2 warm start: the conditional denoiser trained on the pretrained embeddings, once
# per dataset and per distinct diffusion-relevant setting {dkey} (dans_kgc/planning: dkey_of), so
# e.g. the mu sweep fits one warm start per mu and every other DANS run shares one.


rule diffusion:
    input:
        unpack(diffusion_inputs),
    output:
        model="results/{preset}/{dataset}/diffusion/{dkey}/diffusion.pt",
        report="results/{preset}/{dataset}/diffusion/{dkey}/diffusion_report.json",
    log:
        "logs/diffusion/{preset}/{dataset}/{dkey}.log",
    benchmark:
        "results/benchmarks/diffusion/{preset}/{dataset}/{dkey}.tsv"
    params:
        pretrained=input_dir("pretrain"),
        out=output_dir,
        args=diffusion_args,
    threads: 1
    resources:
        mem_mb=mem_mb("diffusion"),
        runtime=runtime("diffusion"),
        gpu=GPUS,
    conda:
        "../envs/dans_kgc.yaml"
    shell:
        "dans-kgc diffusion fit --dataset {wildcards.dataset} --pretrained {params.pretrained} "
        "--out {params.out} {params.args} --set threads={threads} > {log} 2>&1"
