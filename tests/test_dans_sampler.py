"""The DANS-KGC and DHNS-style samplers inside the real training loop (UMLS, tiny settings)."""

import csv
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from conftest import dtm_weights_by_hand, random_dam, spy_chain, tiny_config

from dans_kgc.diffusion import ConditionalDiffusion, save_diffusion
from dans_kgc.sampling import StepContext, build_sampler
from dans_kgc.stages import StageMismatchError, backbone_of, stage_record
from dans_kgc.training import Trainer, build_run

torch.set_num_threads(1)

FAST = [
    "diffusion.hidden=[32, 32]",
    "diffusion.time_dim=16",
    "diffusion.type_dim=8",
    "diffusion.steps=20",
    "train.batch_size=1024",
    "dam.num_clusters=5",
    "samplers.dhns.T=20",
    "samplers.dhns.steps=[0, 2, 2, 5, 10]",
]


def _cfg(*extra: str) -> dict:
    """Tiny DANS config on top of conftest's tiny settings (later --set entries win)."""
    return tiny_config(**dict(s.split("=", 1) for s in ("device=cpu", "train.sampler=dans", *FAST, *extra)))


def _trace(out):
    with open(out / "trace.csv") as f:
        return list(csv.DictReader(f))


def test_dans_trains_two_epochs_and_logs_the_curriculum(umls, tmp_path):
    cfg = _cfg()
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    summary = Trainer(cfg, umls, model, sampler, tmp_path, torch.device("cpu"), "redgnn", show_progress=False).fit()
    assert summary["epochs_run"] == 2 and math.isfinite(summary["best_valid_mrr"])
    rows = _trace(tmp_path)
    for col in ("band_w1", "band_w2", "band_w3", "band_w4", "l_dans", "l_diff", "dtm_centre"):
        assert col in rows[0], col
    for row in rows:
        assert math.isfinite(float(row["loss"]))
        assert sum(float(row[f"band_w{k}"]) for k in range(1, 5)) == pytest.approx(1.0, abs=1e-5)
        assert float(row["l_diff"]) > 0
    # the curriculum moves towards the hard bands as training proceeds
    hard = [sum(k * float(r[f"band_w{k}"]) for k in range(1, 5)) for r in rows]
    assert hard[1] > hard[0]


def test_dans_loss_is_the_method_formula(umls):
    """total = (1-eta) L_rand + eta L_dans (update_every=0: no L_diff), L_dans rebuilt by hand (TransE scores,
    METHOD.md's DTM weights and margins) from the states the chain returned."""
    cfg = _cfg("diffusion.update_every=0", "dans.eta=0.3")
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    pos = torch.from_numpy(umls.train[:64])
    pos_scores = model.score_hrt(pos)
    loss_rand = torch.tensor(0.7)
    seen = spy_chain(sampler)
    loss, logs = sampler.total_loss(loss_rand, StepContext(pos, pos_scores, model, 0.4, step=3))
    head = seen["head_side"]
    assert head.any() and (~head).any()
    e = torch.where(head, pos[:, 0], pos[:, 2])
    assert torch.equal(seen["target"], e)
    with torch.no_grad():
        ent, rel = model.entity.weight, model.relation.weight
        # TransE (p = 1): the tail query is h + r, the head query t - r; S = gamma - ||q - e~||_1
        q = torch.where(head.unsqueeze(1), ent[pos[:, 2]] - rel[pos[:, 1]], ent[pos[:, 0]] + rel[pos[:, 1]])
        assert torch.allclose(seen["query"], q)
        s_neg = cfg["model"]["gamma"] - (q.unsqueeze(1) - seen["neg"]).abs().sum(-1)
    w = torch.tensor(dtm_weights_by_hand(0.4, random_dam(umls)["zeta"][e.numpy()], cfg["dtm"]))
    margins = torch.tensor([cfg["dtm"]["gamma0"] * m for m in cfg["dtm"]["margin_scales"]])
    l_dans = (w * F.relu(margins - pos_scores.detach().unsqueeze(1) + s_neg)).sum(1).mean()
    assert l_dans.item() > 0
    assert logs["l_dans"] == pytest.approx(l_dans.item(), rel=1e-5)
    assert loss.item() == pytest.approx(0.7 * 0.7 + 0.3 * l_dans.item(), rel=1e-5)
    assert logs["l_diff"] == 0.0
    assert not any(p.requires_grad for p in sampler.ans.parameters())  # frozen: out of the optimiser
    loss.backward()
    assert model.entity.weight.grad is not None


def test_sample_fraction_restricts_generation_and_l_diff_to_the_same_rows(umls):
    """sample_fraction = 0.25 of a 64-row batch: 16 rows get a chain, and L_diff sees those 16 rows."""
    cfg = _cfg("diffusion.sample_fraction=0.25")
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    pos = torch.from_numpy(umls.train[:64])
    seen = {}
    sample, loss = sampler.ans.sample, sampler.ans.loss

    def spy_sample(target, query, *a, **k):
        seen["sample"] = target.clone()
        return sample(target, query, *a, **k)

    def spy_loss(x0, target, query, gen, head_side=None):
        seen["loss"] = (x0.clone(), target.clone(), query.clone())
        return loss(x0, target, query, gen, head_side)

    sampler.ans.sample, sampler.ans.loss = spy_sample, spy_loss
    _, logs = sampler.total_loss(torch.tensor(0.5), StepContext(pos, model.score_hrt(pos), model, 0.5, step=0))
    x0, target, query = seen["loss"]
    assert len(seen["sample"]) == 16 and torch.equal(target, seen["sample"])
    assert torch.equal(x0, model.entity(target).detach())
    # each of the 16 rows is a row of the batch, with that row's query on the replaced side
    for t, q in zip(target.tolist(), query, strict=True):
        rows = ((pos[:, 0] == t) | (pos[:, 2] == t)).nonzero().squeeze(1)
        qs = torch.cat(
            [
                model.head_query(model.relation(pos[rows, 1]), model.entity(pos[rows, 2])),
                model.tail_query(model.entity(pos[rows, 0]), model.relation(pos[rows, 1])),
            ]
        )
        assert torch.isclose(qs, q.unsqueeze(0), atol=1e-6).all(1).any()
    assert logs["l_diff"] > 0


@pytest.mark.parametrize(
    "cache", ["diffusion.cache_epochs=0", "diffusion.cache_epochs=2", "diffusion.band_placement=measured"]
)
def test_resume_after_a_crash_matches_an_uninterrupted_run(umls, tmp_path, cache):
    cfg = _cfg("train.epochs=3", "train.batch_size=512", cache)
    dev = torch.device("cpu")

    def trainer(out):
        model, sampler = build_run(cfg, umls, None, **random_dam(umls))
        return Trainer(cfg, umls, model, sampler, out, dev, "redgnn", show_progress=False)

    straight = trainer(tmp_path / "a")
    straight.fit()

    crashing = trainer(tmp_path / "b")
    orig = crashing._train_epoch

    def crash_at_epoch_3(epochs):
        if crashing.epoch == 2:
            raise KeyboardInterrupt("simulated kill")
        return orig(epochs)

    crashing._train_epoch = crash_at_epoch_3
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    resumed = trainer(tmp_path / "b")
    summary = resumed.fit(resume=True)
    assert summary["resumed_from_epoch"] == 2
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    for k, v in straight.sampler.state_dict().items():
        assert torch.equal(v, resumed.sampler.state_dict()[k]), k
    assert [r.get("valid_mrr") for r in straight.history] == [r.get("valid_mrr") for r in resumed.history]
    assert straight.history[-1]["l_dans"] == resumed.history[-1]["l_dans"]


def test_ablations_construct_and_behave(umls):
    gen = torch.Generator().manual_seed(0)
    no_dam = build_sampler("dans", umls, _cfg("dans.use_dam=false"), gen, **random_dam(umls))
    assert torch.equal(no_dam.ans.zeta, torch.full((umls.num_entities,), 0.5))
    # quoted: a bare null parses as YAML None, which config validation rejects
    no_ccd = build_sampler("dans", umls, _cfg('diffusion.condition="null"'), gen, **random_dam(umls))
    assert no_ccd.ans.condition_mode == "null" and not hasattr(no_ccd.ans, "type_embedding")
    no_dtm = build_sampler("dans", umls, _cfg("dtm.enabled=false"), gen, **random_dam(umls))
    assert torch.allclose(no_dtm.band_weights(0.9, torch.arange(5)), torch.full((5, 4), 0.25))
    assert no_dtm.band_margins().tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="use_dam"):
        build_sampler("dans", umls, _cfg(), gen)  # neither DAM output nor warm start


@pytest.mark.parametrize("snap_filter,splits", [("train", ("train",)), ("all", ("train", "valid", "test"))])
def test_snap_mode_trains_with_discrete_negatives(umls, tmp_path, snap_filter, splits):
    cfg = _cfg("diffusion.negatives=snapped", "train.epochs=1", f"diffusion.snap_filter={snap_filter}")
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    Trainer(cfg, umls, model, sampler, tmp_path, torch.device("cpu"), "redgnn", show_progress=False).fit()
    pos = torch.from_numpy(umls.train[:200])
    out = sampler.generate(pos, model)
    known = {tuple(t) for t in umls.all_true(splits).tolist()}
    for i in range(200):
        h, r, t = pos[i].tolist()
        for e in out["ids"][i].tolist():
            assert e >= 0 and ((e, r, t) if out["head_side"][i] else (h, r, e)) not in known
    assert torch.equal(out["neg"], model.entity(out["ids"]))  # the snapped entities' own embeddings


def test_mixed_negatives_split_each_band_between_its_two_forms(umls):
    """mixed: 2 K_b negatives (continuous, then snapped); each band's weight is split evenly."""
    logs = {}
    for form in ("continuous", "mixed"):
        cfg = _cfg(f"diffusion.negatives={form}")
        model, sampler = build_run(cfg, umls, None, **random_dam(umls))
        pos = torch.from_numpy(umls.train[:64])
        seen = {}
        real = sampler.score_negatives
        sampler.score_negatives = lambda m, p, h, neg, seen=seen, real=real: (
            seen.setdefault("k", neg.shape[1]) and real(m, p, h, neg)
        )
        ctx = StepContext(pos=pos, pos_scores=model.score_hrt(pos), model=model, progress=0.3, step=1)
        _, logs[form] = sampler.total_loss(torch.zeros(()), ctx)
        assert seen["k"] == (4 if form == "continuous" else 8)
    for k in range(1, 5):  # every snapped band found a valid entity on UMLS, so the totals agree
        assert logs["mixed"][f"band_w{k}"] == pytest.approx(logs["continuous"][f"band_w{k}"], rel=1e-5)


def test_warm_start_is_loaded_and_checked(umls, tmp_path):
    cfg = _cfg()
    n = umls.num_entities
    d = ConditionalDiffusion.from_config(n, 16, random_dam(umls)["zeta"], random_dam(umls)["clusters"], cfg)
    d.ensure_scale(torch.randn(n, 16) * 0.2)
    record = stage_record("diffusion_dans", cfg, umls, backbone_of(cfg["model"]))
    save_diffusion(tmp_path / "w", d, {"loss_curve": [], "stage_record": record}, cfg)
    s = build_sampler("dans", umls, cfg, torch.Generator().manual_seed(0), diffusion_dir=str(tmp_path / "w"))
    for k, v in d.state_dict().items():
        assert torch.equal(v, s.ans.state_dict()[k]), k
    with pytest.raises(ValueError, match="hidden"):
        build_sampler("dans", umls, _cfg("diffusion.hidden=[8]"), torch.Generator(), diffusion_dir=str(tmp_path / "w"))


def test_warm_start_of_another_backbone_or_dataset_is_refused(umls, tmp_path):
    """A DistMult run given a TransE warm start of the same width stops, naming both backbones."""
    cfg = _cfg()
    n = umls.num_entities
    d = ConditionalDiffusion.from_config(n, 16, random_dam(umls)["zeta"], random_dam(umls)["clusters"], cfg)
    d.ensure_scale(torch.randn(n, 16) * 0.2)
    save_diffusion(
        tmp_path / "w", d, {"stage_record": stage_record("diffusion_dans", cfg, umls, backbone_of(cfg["model"]))}, cfg
    )
    assert cfg["model"]["name"] == "transe"
    with pytest.raises(StageMismatchError, match=r"made for transe \(dim 16\).*needs distmult \(dim 16\)"):
        build_sampler("dans", umls, _cfg("model.name=distmult"), torch.Generator(), diffusion_dir=str(tmp_path / "w"))
    other = replace(umls, name="family")
    with pytest.raises(StageMismatchError, match="differs in dataset"):
        build_sampler("dans", other, cfg, torch.Generator(), diffusion_dir=str(tmp_path / "w"))
    save_diffusion(tmp_path / "old", d, {}, cfg)  # no record: an older version's output is not trusted either
    with pytest.raises(StageMismatchError, match="no stage record"):
        build_sampler("dans", umls, cfg, torch.Generator(), diffusion_dir=str(tmp_path / "old"))


def test_dhns_baseline_trains_without_a_warm_start(umls, tmp_path):
    cfg = _cfg("train.sampler=dhns", "train.epochs=1")
    model, sampler = build_run(cfg, umls, None)
    assert sampler.ans.mu == 0.0 and sampler.ans.condition_mode == "query" and sampler.keep == [0, 2, 2, 5, 10]
    assert sampler.band_weights(0.1, torch.arange(3))[0].tolist() == pytest.approx([0, 0.125, 0.25, 0.25, 0.125])
    Trainer(cfg, umls, model, sampler, tmp_path, torch.device("cpu"), "redgnn", show_progress=False).fit()
    row = _trace(tmp_path)[-1]
    assert math.isfinite(float(row["loss"])) and "l_dhns" in row and float(row["l_diff"]) > 0


def _cached_sampler(umls, epochs: int = 1):
    cfg = _cfg(f"diffusion.cache_epochs={epochs}", "train.batch_size=512")
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    return model, sampler


def test_cache_reuses_a_triples_chain_states_for_cache_epochs_then_regenerates(umls):
    model, sampler = _cached_sampler(umls, epochs=1)
    # UMLS train graph: 5,327 triples, batch 512 -> 11 steps per epoch, so a state lives 11 steps.
    assert sampler.cache_period == math.ceil(len(umls.train) / 512)
    pos = torch.as_tensor(umls.train[:6], dtype=torch.long)
    tail = torch.zeros(6, dtype=torch.bool)
    first = sampler.generate_cached(pos, model, tail, step=0)
    rng = sampler.generator.get_state()
    again = sampler.generate_cached(pos, model, tail, step=sampler.cache_period - 1)
    assert torch.equal(first["neg"], again["neg"])  # reused, not a new chain ...
    assert torch.equal(rng, sampler.generator.get_state())  # ... so no random draw either
    head = sampler.generate_cached(pos, model, ~tail, step=1)  # the other side has its own states
    assert not torch.equal(head["neg"], first["neg"])
    assert torch.equal(head["target"], pos[:, 0]) and torch.equal(first["target"], pos[:, 2])
    late = sampler.generate_cached(pos, model, tail, step=sampler.cache_period)
    assert not torch.equal(late["neg"], first["neg"])  # aged out: regenerated
    # a batch mixing cached and uncached rows: the cached ones keep their states, the rest are new
    mixed_pos = torch.as_tensor(umls.train[3:9], dtype=torch.long)
    calls, own = [], model.negative_space
    model.negative_space = lambda p, h: calls.append(len(p)) or own(p, h)
    state = sampler.generator.get_state()
    mixed = sampler.generate_cached(mixed_pos, model, tail, step=sampler.cache_period + 1)
    del model.negative_space
    assert calls == [6]  # the backbone's space once per batch; the new rows' chains read its rows
    sampler.generator.set_state(state)
    direct = sampler.generate(mixed_pos[3:], model, tail[3:], snap=False)
    assert torch.allclose(mixed["neg"][3:], direct["neg"])  # the same chain as generating those rows alone
    assert torch.equal(mixed["neg"][:3], late["neg"][3:])
    assert torch.equal(
        sampler.cache_step[sampler._cache_rows(mixed_pos), 0],
        torch.tensor([sampler.cache_period] * 3 + [sampler.cache_period + 1] * 3),
    )


def test_a_new_band_placement_regenerates_the_cached_negatives(umls, monkeypatch):
    """Measured placement with the cache: negatives cached on the old band states are not reused once the
    bands move; an unchanged placement keeps the cache."""
    import dans_kgc.band_probe as probe

    cfg = _cfg(
        "diffusion.band_placement=measured",
        "diffusion.sampling_steps=10",
        "diffusion.cache_epochs=4",
        "train.batch_size=512",
    )
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    hardness = {"ceiling": 1.0}  # quantile ceiling * (1 - s / 20) at state s: a lower ceiling moves the bands

    def fake(smp, mdl, pos, head_side, generator, margins=None):
        return {"hard": {"quantile": torch.tensor([hardness["ceiling"] * (1.0 - k / 20) for k in smp.keep])}}

    monkeypatch.setattr(probe, "scored_bands", fake)
    sampler.refresh(model)
    pos = torch.as_tensor(umls.train[:6], dtype=torch.long)
    tail = torch.zeros(6, dtype=torch.bool)
    first = sampler.generate_cached(pos, model, tail, step=0)
    placed = sampler.band_states
    sampler.refresh(model)  # same measurements, same placement: the cache stays
    assert sampler.band_states == placed
    assert torch.equal(sampler.generate_cached(pos, model, tail, step=1)["neg"], first["neg"])
    hardness["ceiling"] = 0.8
    sampler.refresh(model)
    assert sampler.band_states != placed
    assert bool((sampler.cache_step < 0).all())
    moved = sampler.generate_cached(pos, model, tail, step=2)  # within cache_epochs, yet regenerated
    assert not torch.equal(moved["neg"], first["neg"])
    assert bool((sampler.cache_step[sampler._cache_rows(pos), 0] == 2).all())


def test_cache_rows_find_every_train_triple_and_nothing_else(umls):
    _, sampler = _cached_sampler(umls)
    train = torch.as_tensor(umls.train, dtype=torch.long)
    rows = sampler._cache_rows(train)
    assert torch.equal(train[rows], train)  # each triple maps to its own row
    fake = train[:4].clone()
    fake[:, 2] = (fake[:, 2] + 1) % umls.num_entities
    known = {tuple(t) for t in umls.train.tolist()}
    expect = torch.tensor([-1 if tuple(t) not in known else 0 for t in fake.tolist()])
    assert torch.equal(sampler._cache_rows(fake) < 0, expect < 0)


def test_cache_off_draws_a_new_chain_every_call(umls):
    cfg = _cfg()
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    pos = torch.as_tensor(umls.train[:6], dtype=torch.long)
    tail = torch.zeros(6, dtype=torch.bool)
    a, b = sampler.generate_cached(pos, model, tail, 0), sampler.generate_cached(pos, model, tail, 1)
    assert not torch.equal(a["neg"], b["neg"])
    assert not hasattr(sampler, "cache_states")


# ----------------------------------------------------------------------------------------
# measured band placement (diffusion.band_placement = measured)
# ----------------------------------------------------------------------------------------
def test_measured_placement_puts_each_band_on_the_state_nearest_its_target_quantile(umls, monkeypatch):
    import dans_kgc.band_probe as probe

    cfg = _cfg(
        "diffusion.band_placement=measured",
        "diffusion.sampling_steps=10",
        "diffusion.band_quantiles=[0.1, 0.5, 0.93, 0.98]",
    )
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    candidates = sampler.placement_candidates()
    assert candidates == [20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0]  # the respaced chain's states, T = 20
    # known answer: quantile 1 - s / 20 at state s (noisier = easier)
    seen = {}

    def fake(smp, mdl, pos, head_side, generator, margins=None):
        seen["keep"] = list(smp.keep)
        return {"hard": {"quantile": torch.tensor([1.0 - k / 20 for k in smp.keep])}}

    monkeypatch.setattr(probe, "scored_bands", fake)
    cols = sampler.refresh(model)
    assert seen["keep"] == candidates
    # targets 0.1 -> s = 18 (0.10); 0.5 -> 10 (0.50); 0.93 -> 2 (0.90) vs 0 (1.00): 2; 0.98 -> 0 (1.00)
    assert sampler.band_keep.tolist() == [18, 10, 2, 0]
    assert cols == {"band1_step": 18.0, "band2_step": 10.0, "band3_step": 2.0, "band4_step": 0.0}
    assert sampler.keep == [15, 10, 5, 0]  # the configured band_steps stay as they were
    # the chain now keeps the placed states
    kept = {}
    orig = sampler.ans.sample

    def spy(target, query, generator, keep, *a, **k):
        kept["keep"] = list(keep)
        return orig(target, query, generator, keep, *a, **k)

    monkeypatch.setattr(sampler.ans, "sample", spy)
    sampler.generate(torch.as_tensor(umls.train[:8]), model)
    assert kept["keep"] == [18, 10, 2, 0]
    # a checkpoint carries the placement: a fresh sampler loading it generates on the placed states
    _, resumed = build_run(cfg, umls, None, **random_dam(umls))
    assert resumed.band_states == [15, 10, 5, 0]
    resumed.load_state_dict(sampler.state_dict())
    assert resumed.band_states == [18, 10, 2, 0]


@pytest.mark.parametrize(
    "candidates, quantiles, want",
    [
        # quantile 1 - s / 20: each band on its nearest state (0.93 -> s = 2 at 0.90; 0.98 -> s = 0 at 1.00)
        ([20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0], [1 - s / 20 for s in range(20, -1, -2)], [10, 4, 2, 0]),
        # a ceiling at 0.92: the two hardest targets lie beyond every state; nearest would put bands 3 and 4 on one
        # state (10 or 0), the assignment keeps them distinct: cost 0 + .05 + .01 + .06 beats [50, 40, 20, 0] (.19)
        ([50, 40, 30, 20, 10, 0], [0.5, 0.7, 0.85, 0.9, 0.92, 0.92], [50, 30, 10, 0]),
        # inverted chain (hardness falls as noise is removed): bands follow measured hardness, not the step order
        ([50, 40, 30, 20, 10, 0], [0.86, 0.84, 0.80, 0.75, 0.72, 0.71], [0, 30, 40, 50]),
        # fewer candidate states than bands: each band's nearest state
        ([2, 0], [0.4, 0.9], [2, 0, 0, 0]),
    ],
)
def test_assign_bands_known_answers(candidates, quantiles, want):
    from dans_kgc.sampling.dans import assign_bands

    assert assign_bands(quantiles, candidates, [0.5, 0.8, 0.93, 0.98]) == want


def test_measured_placement_runs_in_training_and_writes_the_band_steps(umls, tmp_path):
    cfg = _cfg("diffusion.band_placement=measured", "diagnostics.triples=64")
    model, sampler = build_run(cfg, umls, None, **random_dam(umls))
    Trainer(cfg, umls, model, sampler, tmp_path, torch.device("cpu"), "redgnn", show_progress=False).fit()
    rows = _trace(tmp_path)
    steps = [[int(float(r[f"band{k}_step"])) for k in range(1, 5)] for r in rows]
    assert all(0 <= s <= 20 for row in steps for s in row)
    assert "band1_quantile" in rows[0]  # the probe measured the bands the epoch used
    # fixed placement writes no band steps and keeps no placement buffer
    cfg = _cfg()
    _, fixed = build_run(cfg, umls, None, **random_dam(umls))
    assert fixed.refresh(model) == {} and "band_keep" not in fixed.state_dict()


def test_measured_placement_is_refused_with_a_bad_target_list(umls):
    from dans_kgc.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="band_quantiles"):
        load_config([], ["diffusion.band_placement=measured", "diffusion.band_quantiles=[0.5, 0.9]"])
    cfg = _cfg("diffusion.band_placement=measured", "diffusion.band_quantiles=[0.9, 0.5, 0.95, 0.99]")
    with pytest.raises(ValueError, match="increasing entity quantiles"):
        build_run(cfg, umls, None, **random_dam(umls))
