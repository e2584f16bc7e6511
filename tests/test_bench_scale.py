"""bench_scale builds what a requested stage reads before measuring it, and nothing twice."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "benchmarks" / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ran: list[str] = []

    def fake_run(name, stage, work, cfg_file, env):
        ran.append(stage)
        module.done_marker(work, name, stage).parent.mkdir(parents=True, exist_ok=True)
        module.done_marker(work, name, stage).touch()
        return 0, 0.0, 0.0

    monkeypatch.setattr(module, "run_stage", fake_run)
    return module, ran


def test_a_measured_stage_on_a_new_machine_gets_its_inputs_built_in_order(bench, tmp_path):
    module, ran = bench
    module.build_upstream("g", "train_dans", tmp_path, tmp_path / "bench.yaml", {})
    # every input once, each after what it reads
    assert ran == ["fetch", "pretrain", "dam", "diffusion"]
    ran.clear()
    module.build_upstream("g", "train_dhns", tmp_path, tmp_path / "bench.yaml", {})
    assert ran == ["diffusion_dhns"]  # pretrain (and fetch) are there already
    ran.clear()
    module.build_upstream("g", "train_dans", tmp_path, tmp_path / "bench.yaml", {})
    assert ran == []


def test_every_stage_has_its_inputs_declared_and_they_come_earlier(bench):
    module, _ = bench
    assert set(module.UPSTREAM) == set(module.STAGES)
    order = {s: i for i, s in enumerate(module.STAGES)}
    for stage, needs in module.UPSTREAM.items():
        assert all(order[n] < order[stage] for n in needs), stage


def test_a_failed_input_stops_with_its_log(bench, tmp_path, monkeypatch):
    module, _ = bench
    monkeypatch.setattr(module, "run_stage", lambda *a: (3, 0.0, 0.0))
    with pytest.raises(SystemExit, match=r"g/fetch failed \(exit 3\); see .*fetch\.log"):
        module.build_upstream("g", "dam", tmp_path, tmp_path / "bench.yaml", {})
