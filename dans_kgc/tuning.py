"""Equal-budget hyper-parameter search: ``dans-kgc tune`` (Optuna, as PyKEEN's ``hpo_pipeline``).

A study tunes one sampler on one backbone and dataset: a seeded TPE sampler proposes a
configuration from the search space (``search_spaces.yaml``: the shared space, the sampler's,
the backbone's), a trial is one training run in ``STUDY_DIR/trials/NNNN/`` with the per-trial
budget (``tune.epochs`` / ``tune.max_seconds``), the median pruner stops a trial whose validation
curve falls behind, and the objective is the trial's best validation MRR (never test).

Resume: the study lives in a database (``STUDY_DIR/study.db`` or any Optuna RDB URL). Finished
trials (complete, pruned, diverged) count against ``--trials``; a trial left RUNNING by a dead
process (same host and its pid is gone, or its heartbeat is older than 4 beats) is continued from
its checkpoint with its stored parameters, under its own number, so no trial is lost or repeated.

Search-space keys a trial may not change are left out with a logged note: keys the run's training
setting ignores (``ignored`` in the space file) and keys a given stage input fixes (BOUND_KEYS).
Importing this module costs no torch or optuna import (the DAG reads ``space_keys``).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from dans_kgc.config import ConfigError, load_defaults, merge, nest_dotted, validate_values
from dans_kgc.stages import flatten

log = logging.getLogger(__name__)

SPACE_FILE = "search_spaces.yaml"
STUDY_DB = "study.db"
STUDY_JSON = "study.json"
BEST_YAML = "best.yaml"
TRIALS_DIR = "trials"
OBJECTIVE = "valid_mrr"
SECTIONS = ("shared", "samplers", "backbones", "ignored")
DIST_FIELDS = {
    "float": {"type", "low", "high", "log"},
    "int": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}
# what the search may not touch: the study's identity, its budget, where and how fast it runs, where it is tracked
UNTUNABLE = (
    "seed",
    "threads",
    "device",
    "protocol",
    "data.",
    "tune.",
    "tuned.",
    "tracker.",
    "train.sampler",
    "train.mode",
    "train.epochs",
    "train.max_seconds",
    "model.name",
)

# Keys a stage input fixes, so a trial must not change them: what the run checks before it uses the input
# (the stage record's backbone name + dim, checks.check_record; the warm start's architecture,
# sampling/dans.py _ARCH_KEYS; the DAM's semantic pretraining). Not the stage's whole fingerprint
# (stages.stage_keys): that covers keys such as train.lr of a backbone's pretraining, which shape the
# input without making it unusable. The warm start's schedule keys (diffusion.mu, steps, betas) may differ
# from the run's: load_warm_start documents that the run's value wins (a mu sweep from one warm start).
BOUND_KEYS = {
    "pretrained": ("model.name", "model.dim"),  # with train.init_from_pretrained only
    "dam": ("dam.", "pretrain."),  # + model.name / model.dim when dam.semantic_source = backbone
    "diffusion": (
        "model.name",
        "model.dim",
        "diffusion.hidden",
        "diffusion.time_dim",
        "diffusion.type_dim",
        "diffusion.condition",
        "diffusion.normalize",
        "diffusion.side_flag",
        "diffusion.prediction",
        "dam.num_clusters",
        "dans.use_dam",
    ),
}
COUNTED = "counted"  # user attr of a FAIL trial that used its budget (diverged / never validated)


class SpaceError(ConfigError):
    """A search space is invalid; the message is one line naming the file and key."""


def _matches(key: str, pattern: str) -> bool:
    return key == pattern or (pattern.endswith(".") and key.startswith(pattern))


# ----------------------------------------------------------------------------------------
# search spaces (pure Python: the DAG and the report use them without torch or optuna)
# ----------------------------------------------------------------------------------------
def space_path(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("tune", {}).get("space") or resources.files("dans_kgc").joinpath(SPACE_FILE))


def load_space(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a search-space file (default: the package's); SpaceError names file and key."""
    src = Path(path) if path else Path(str(resources.files("dans_kgc").joinpath(SPACE_FILE)))
    try:
        data = yaml.safe_load(src.read_text()) or {}
    except OSError as err:
        raise SpaceError(f"{src}: cannot read search-space file ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise SpaceError(f"{src}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, Mapping):
        raise SpaceError(f"{src}: expected a mapping with sections {', '.join(SECTIONS)}")
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise SpaceError(f"{src}: unknown section '{unknown[0]}' (expected {', '.join(SECTIONS)})")
    flat_defaults = flatten(load_defaults())
    check_entries(data.get("shared") or {}, flat_defaults, f"{src}: shared")
    for group in ("samplers", "backbones"):
        for name, entries in (data.get(group) or {}).items():
            check_entries(entries or {}, flat_defaults, f"{src}: {group}.{name}", allow_null=group == "backbones")
    for i, rule in enumerate(data.get("ignored") or []):
        where = f"{src}: ignored[{i}]"
        if not isinstance(rule, Mapping) or set(rule) != {"when", "keys"} or not isinstance(rule["when"], Mapping):
            raise SpaceError(f"{where}: expected {{when: {{KEY: VALUE}}, keys: [KEY, ...]}}")
        for key in [*rule["when"], *rule["keys"]]:
            if key not in flat_defaults:
                raise SpaceError(f"{where}: unknown config key '{key}'")
    return {"path": str(src), **{k: data.get(k) or ({} if k != "ignored" else []) for k in SECTIONS}}


def check_entries(entries: Any, flat_defaults: Mapping[str, Any], where: str, allow_null: bool = False) -> None:
    if not isinstance(entries, Mapping):
        raise SpaceError(f"{where}: expected a mapping of config keys to distributions, got {entries!r}")
    for key, spec in entries.items():
        if spec is None and allow_null:
            continue
        check_distribution(str(key), spec, flat_defaults, where)


def check_distribution(key: str, spec: Any, flat_defaults: Mapping[str, Any], where: str) -> None:
    """One distribution of a search space; a SpaceError names the key and what was expected."""
    if key not in flat_defaults:
        raise SpaceError(f"{where}: unknown config key '{key}' (see dans_kgc/defaults.yaml)")
    if any(_matches(key, p) for p in UNTUNABLE):
        raise SpaceError(f"{where}: config key '{key}' is not tunable (it fixes the study or its budget)")
    expect = "expected {type: float|int, low, high[, log][, step]} or {type: categorical, choices: [...]}"
    if not isinstance(spec, Mapping) or spec.get("type") not in DIST_FIELDS:
        raise SpaceError(f"{where}: key '{key}': bad distribution {spec!r}; {expect}")
    kind = spec["type"]
    extra = set(spec) - DIST_FIELDS[kind]
    if extra:
        raise SpaceError(f"{where}: key '{key}': unknown field '{sorted(extra)[0]}' for type {kind}; {expect}")
    default = flat_defaults[key]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: key '{key}': categorical needs a non-empty list 'choices'")
        bad = [c for c in choices if not _fits(default, c)]
        if bad:
            raise SpaceError(
                f"{where}: key '{key}': choice {bad[0]!r} does not fit the key's type "
                f"({type(default).__name__}, default {default!r})"
            )
        return
    low, high = spec.get("low"), spec.get("high")
    if not (_is_number(low) and _is_number(high)) or not low < high:
        raise SpaceError(f"{where}: key '{key}': {kind} needs numbers low < high, got low={low!r} high={high!r}")
    if spec.get("log") and low <= 0:
        raise SpaceError(f"{where}: key '{key}': log: true needs low > 0, got {low!r}")
    if kind == "int" and not all(isinstance(v, int) for v in (low, high, spec.get("step", 1))):
        raise SpaceError(f"{where}: key '{key}': int needs integer low, high and step")
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise SpaceError(
            f"{where}: key '{key}' is a {type(default).__name__} (default {default!r}); "
            "a numeric distribution does not fit: use categorical"
        )
    if kind == "float" and isinstance(default, int):
        raise SpaceError(f"{where}: key '{key}' takes an integer (default {default!r}); use type: int")


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits(default: Any, value: Any) -> bool:
    from dans_kgc.config import _type_ok

    return _type_ok(default, value)


def _bound_patterns(cfg: Mapping[str, Any], stage_inputs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    given = set(stage_inputs)
    out: dict[str, tuple[str, ...]] = {}
    if "pretrained" in given and cfg["train"]["init_from_pretrained"]:
        out["--pretrained"] = BOUND_KEYS["pretrained"]
    if "dam" in given:
        semantic = ("model.name", "model.dim") if cfg["dam"]["semantic_source"] == "backbone" else ()
        out["--dam"] = BOUND_KEYS["dam"] + semantic
    if "diffusion" in given:
        out["--diffusion"] = BOUND_KEYS["diffusion"]
    return out


def resolve_space(
    space: Mapping[str, Any], cfg: Mapping[str, Any], stage_inputs: Iterable[str] = ()
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(key -> distribution, notes): the space a trial of this config samples. ``stage_inputs``: which of
    pretrained / dam / diffusion the trials are given. Notes say which keys were left out and why."""
    sampler, backbone = cfg["train"]["sampler"], cfg["model"]["name"]
    out = dict(space.get("shared") or {})
    if sampler not in (space.get("samplers") or {}):
        log.warning("%s: no space for sampler '%s'; only the shared space is searched", space.get("path"), sampler)
    out.update((space.get("samplers") or {}).get(sampler) or {})
    out.update((space.get("backbones") or {}).get(backbone) or {})
    notes = [f"{k}: removed by backbones.{backbone}" for k, v in out.items() if v is None]
    out = {k: dict(v) for k, v in out.items() if v is not None}
    flat = flatten(cfg)
    for rule in space.get("ignored") or []:
        if all(flat.get(k) == v for k, v in rule["when"].items()):
            why = ", ".join(f"{k}={v}" for k, v in rule["when"].items())
            for key in rule["keys"]:
                if out.pop(key, None) is not None:
                    notes.append(f"{key}: left out ({why} does not read it)")
    for flag, patterns in _bound_patterns(cfg, stage_inputs).items():
        for key in [k for k in out if any(_matches(k, p) for p in patterns)]:
            del out[key]
            notes.append(f"{key}: left out (fixed by the stage input {flag}; a trial changing it could not use it)")
    return out, notes


def space_keys(cfg: Mapping[str, Any], stage_inputs: Iterable[str] = ()) -> list[str]:
    """The keys a study of this config searches (what its best.yaml sets; the DAG leaves them out of --set)."""
    return sorted(resolve_space(load_space(cfg["tune"]["space"]), cfg, stage_inputs)[0])


def apply_params(cfg: Mapping[str, Any], params: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``cfg`` with the flat ``params`` set (checked like any config)."""
    out = merge(dict(cfg), nest_dotted(params), source)
    validate_values(out)
    return out


def budget_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The per-trial budget in the training keys: tune.epochs -> train.epochs, tune.max_seconds ->
    train.max_seconds (0 keeps the train.* value): the same for every sampler of a comparison."""
    out = copy.deepcopy(dict(cfg))
    t = cfg["tune"]
    if int(t["epochs"]) > 0:
        out["train"]["epochs"] = int(t["epochs"])
    if float(t["max_seconds"]) > 0:
        out["train"]["max_seconds"] = t["max_seconds"]
    if int(t["trials"]) < 1:
        raise ConfigError(f"config key 'tune.trials' = {t['trials']}; expected >= 1")
    return out


# ----------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------
def masked_url(url: str) -> str:
    """A storage URL without its password (it goes into best.yaml and study.json)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is reported by Optuna itself
        return url.split("@")[-1]


def _alive(worker: str) -> bool | None:
    """Whether the process ``host:pid`` runs; None when it is on another host (judged by heartbeat)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Heartbeat:
    """Writes the trial's ``heartbeat`` user attr every ``seconds`` from a daemon thread."""

    def __init__(self, study: Any, trial_id: int, seconds: float):
        self.study, self.trial_id, self.seconds = study, trial_id, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.study._storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
            except Exception as err:  # noqa: BLE001 - a missed beat must not kill the trial
                log.debug("heartbeat: %s", err)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Tuner:
    """One worker of a study: continues orphaned trials, then asks new ones until ``trials`` are finished."""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        dataset: str,
        out: Path,
        *,
        trials: int,
        storage: str | None,
        study_name: str | None,
        pretrained: Path | None = None,
        stage_resources: dict | None = None,
        quiet: bool = True,
    ):
        self.base = budget_config(cfg)
        self.cfg = cfg
        self.dataset, self.out, self.trials = dataset, Path(out), int(trials)
        self.pretrained = pretrained
        self.resources = dict(stage_resources or {})
        self.quiet = quiet
        given = [
            n
            for n, v in (
                ("pretrained", pretrained),
                ("dam", self.resources.get("dam_dir")),
                ("diffusion", self.resources.get("diffusion_dir")),
            )
            if v
        ]
        self.space_file = load_space(cfg["tune"]["space"])
        self.space, self.notes = resolve_space(self.space_file, self.base, given)
        for note in self.notes:
            log.info("tune: %s", note)
        if not self.space:
            raise SpaceError(
                f"{self.space_file['path']}: nothing left to search for sampler "
                f"'{cfg['train']['sampler']}' on {cfg['model']['name']} ({'; '.join(self.notes)})"
            )
        self.storage = storage or f"sqlite:///{(self.out / STUDY_DB).resolve()}"
        self.default_storage = storage is None
        self.study_name = study_name or f"{dataset}-{cfg['train']['sampler']}-{cfg['model']['name']}"
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.beat = float(cfg["tune"]["heartbeat_seconds"])

    # --- optuna objects ---------------------------------------------------------------

    def recorded_storage(self) -> str:
        """The storage as best.yaml and study.json record it: without a password; the default SQLite file relative
        to the working directory when it lies below it (the DAG's results/... path), so committed records name no
        machine's folders."""
        if self.default_storage:
            db = (self.out / STUDY_DB).resolve()
            cwd = Path.cwd().resolve()
            if db.is_relative_to(cwd):
                return f"sqlite:///{db.relative_to(cwd)}"
        return masked_url(self.storage)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The trial's parameters: sampled, or the stored ones of a continued trial (Optuna returns a
        parameter the trial already has)."""
        out: dict[str, Any] = {}
        for key, s in self.space.items():
            if s["type"] == "categorical":
                out[key] = trial.suggest_categorical(key, s["choices"])
            elif s["type"] == "int":
                out[key] = trial.suggest_int(key, s["low"], s["high"], step=s.get("step", 1), log=bool(s.get("log")))
            else:
                out[key] = trial.suggest_float(key, float(s["low"]), float(s["high"]), log=bool(s.get("log")))
        return out

    def _sampler(self, number: int) -> Any:
        """TPE seeded by (config seed, trial number): a restarted worker does not replay the draws of the
        trials before it (one seed per process would propose trial 0's parameters again)."""
        import optuna

        return optuna.samplers.TPESampler(
            seed=int(self.cfg["seed"]) * 100_003 + number, n_startup_trials=int(self.cfg["tune"]["startup_trials"])
        )

    def open(self) -> Any:
        import optuna

        self.out.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        every = int(self.base["train"]["eval_every"])
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=int(self.cfg["tune"]["startup_trials"]),
            n_warmup_steps=int(self.cfg["tune"]["prune_warmup"]) * every,
        )
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            direction="maximize",
            sampler=self._sampler(0),
            pruner=pruner,
            load_if_exists=True,
        )
        self._check_same_study(study)
        return study

    def _identity(self) -> dict[str, Any]:
        """What a study is: dataset and the full trial base config (budget included), minus runtime keys."""
        runtime = (
            "threads",
            "device",
            "data.mirror",
            "tune.trials",
            "tune.space",
            "tune.heartbeat_seconds",
            "tracker.",
            "recipe.",
        )  # recipe.*: where the backbone keys came from, not what they are
        flat = {k: v for k, v in flatten(self.base).items() if not any(_matches(k, p) for p in runtime)}
        return {"dataset": self.dataset, "config": json.loads(json.dumps(flat, default=str)), "space": self.space}

    def _check_same_study(self, study: Any) -> None:
        """A study continues only with the settings it started with (equal budget, same trials)."""
        mine = self._identity()
        theirs = study.user_attrs.get("identity")
        if theirs is None:
            study.set_user_attr("identity", mine)
            return
        diffs = [f"dataset: {theirs['dataset']} -> {mine['dataset']}"] if theirs["dataset"] != mine["dataset"] else []
        diffs += [
            f"{k}: {theirs['config'].get(k)!r} -> {mine['config'].get(k)!r}"
            for k in sorted(set(theirs["config"]) | set(mine["config"]))
            if theirs["config"].get(k) != mine["config"].get(k)
        ]
        if theirs["space"] != mine["space"]:
            diffs.append("search space")
        if diffs:
            raise ConfigError(
                f"study '{self.study_name}' in {masked_url(self.storage)} was started with other "
                f"settings ({'; '.join(diffs[:4])}{' ...' if len(diffs) > 4 else ''}); rerun with "
                "the same settings to resume it, or use another --out / --study-name"
            )

    # --- the worker loop ----------------------------------------------------------------
    def _orphaned(self, t: Any) -> bool:
        worker = t.user_attrs.get("worker")
        alive = _alive(worker) if worker else None
        if alive is not None:
            return not alive
        last = t.user_attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else 0)
        return time.time() - float(last) > 4 * self.beat

    def _finished(self, study: Any) -> tuple[int, list[Any], list[Any]]:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        done = sum(
            1
            for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.user_attrs.get(COUNTED))
        )
        running = [t for t in trials if t.state == TrialState.RUNNING]
        orphans = [t for t in running if self._orphaned(t)]
        return done, orphans, [t for t in running if t not in orphans]

    def run(self) -> dict[str, Any]:
        start = time.perf_counter()
        study = self.open()
        ran = 0
        while True:
            done, orphans, live = self._finished(study)
            if orphans:
                trial = self._claim(study, orphans[0])
                if trial is not None:
                    self._run_trial(study, trial, resume=True)
                    ran += 1
                continue
            if done + len(live) >= self.trials:
                break
            study.sampler = self._sampler(len(study.get_trials(deepcopy=False)))
            trial = study.ask()
            self._own(study, trial._trial_id)
            self._run_trial(study, trial, resume=False)
            ran += 1
        while live:  # other workers' trials: best.yaml waits for the whole study
            log.info("tune: waiting for %d trial(s) of other workers", len(live))
            time.sleep(self.beat)
            _, orphans, live = self._finished(study)
            if orphans:
                return self.run()
        wall = time.perf_counter() - start
        study.set_user_attr("wall_seconds", float(study.user_attrs.get("wall_seconds", 0.0)) + wall)
        log.info("tune %s: %d trial(s) run by this worker in %.1f s", self.study_name, ran, wall)
        return self.write_outputs(study)

    def _own(self, study: Any, trial_id: int) -> None:
        study._storage.set_trial_user_attr(trial_id, "worker", self.worker)
        study._storage.set_trial_user_attr(trial_id, "heartbeat", time.time())

    def _claim(self, study: Any, frozen: Any) -> Any | None:
        """Take over an orphaned RUNNING trial (same number, same parameters); None if another worker won."""
        from optuna.trial import Trial

        self._own(study, frozen._trial_id)
        time.sleep(0.2)  # two workers claiming at once: the last write wins, the other backs off
        if study._storage.get_trial(frozen._trial_id).user_attrs.get("worker") != self.worker:
            return None
        log.info("tune: continuing trial %d (left running by %s)", frozen.number, frozen.user_attrs.get("worker"))
        return Trial(study, frozen._trial_id)

    def trial_dir(self, number: int) -> Path:
        return self.out / TRIALS_DIR / f"{number:04d}"

    def _run_trial(self, study: Any, trial: Any, resume: bool) -> None:
        import optuna
        from optuna.trial import TrialState

        from dans_kgc.pipeline import run_training
        from dans_kgc.training import TrainingDivergedError

        params = self.suggest(trial)
        cfg = apply_params(self.base, params, f"trial {trial.number}")
        folder = self.trial_dir(trial.number)
        if not resume and (folder / "checkpoint.pt").exists():  # a stale folder of a study deleted from storage
            (folder / "checkpoint.pt").unlink()
        holder: dict[str, Any] = {}

        def on_validation(epoch: int, mrr: float) -> None:
            trial.report(float(mrr), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"valid MRR {mrr:.4f} at epoch {epoch}")

        log.info(
            "tune: trial %d %s %s",
            trial.number,
            "resumed" if resume else "started",
            ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()),
        )
        state, value = TrialState.COMPLETE, None
        with Heartbeat(study, trial._trial_id, self.beat):
            try:
                summary = run_training(
                    cfg,
                    self.dataset,
                    folder,
                    pretrained=self.pretrained,
                    resume=resume,
                    quiet=self.quiet,
                    tags={"experiment": "tune", "trial": str(trial.number)},
                    on_validation=on_validation,
                    trainer_hook=lambda tr: holder.update(trainer=tr),
                    **self.resources,
                )
                value = float(summary["best_valid_mrr"])
                for k in ("epochs_run", "best_epoch", "train_seconds", "stop_reason"):
                    study._storage.set_trial_user_attr(trial._trial_id, k, summary[k])
                if not math.isfinite(value):  # no validation within the budget: counted, no value
                    state = TrialState.FAIL
                    study._storage.set_trial_user_attr(trial._trial_id, COUNTED, "no validation within the budget")
            except optuna.TrialPruned as why:
                state = TrialState.PRUNED
                tr = holder.get("trainer")
                if tr is not None:
                    tr.write_trace()
                    study._storage.set_trial_user_attr(trial._trial_id, "epochs_run", tr.epoch)
                    study._storage.set_trial_user_attr(trial._trial_id, "train_seconds", round(tr.train_seconds, 3))
                log.info("tune: trial %d pruned (%s)", trial.number, why)
            except TrainingDivergedError as err:  # a diverging configuration is a result: it used its budget
                state = TrialState.FAIL
                study._storage.set_trial_user_attr(trial._trial_id, COUNTED, f"diverged: {err}")
                log.info("tune: trial %d diverged (%s)", trial.number, err)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)  # not counted: the next run samples a new trial
                raise
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)

    # --- outputs ------------------------------------------------------------------------
    def write_outputs(self, study: Any) -> dict[str, Any]:
        from optuna.trial import TrialState

        from dans_kgc.provenance import git_commit, package_versions
        from dans_kgc.utils import write_json, write_text

        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        budget = {
            "trials": self.trials,
            "epochs_per_trial": int(self.base["train"]["epochs"]),
            "max_seconds_per_trial": float(self.base["train"]["max_seconds"]),
            "eval_every": int(self.base["train"]["eval_every"]),
            "trials_finished": sum(
                1
                for t in trials
                if t.state != TrialState.RUNNING and (t.state != TrialState.FAIL or t.user_attrs.get(COUNTED))
            ),
            "complete": sum(1 for t in trials if t.state == TrialState.COMPLETE),
            "pruned": sum(1 for t in trials if t.state == TrialState.PRUNED),
            "failed": sum(1 for t in trials if t.state == TrialState.FAIL),
            "epochs_run_total": sum(int(t.user_attrs.get("epochs_run") or 0) for t in trials),
            "train_seconds_total": round(sum(float(t.user_attrs.get("train_seconds") or 0) for t in trials), 3),
            "wall_seconds_total": round(float(study.user_attrs.get("wall_seconds", 0.0)), 3),
        }
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
        storage = self.recorded_storage()
        info = {
            "kind": "dans_kgc_study",
            "study": self.study_name,
            "storage": storage,
            "dataset": self.dataset,
            "sampler": self.cfg["train"]["sampler"],
            "model": self.cfg["model"]["name"],
            "mode": self.cfg["train"]["mode"],
            "objective": OBJECTIVE,
            "direction": "maximize",
            "budget": budget,
            "space_file": self.space_file["path"],
            "space": self.space,
            "left_out": self.notes,
            "best": {"trial": best.number, "value": best.value, "params": best.params} if best else None,
            "trials": [
                {
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "params": t.params,
                    "epochs_run": t.user_attrs.get("epochs_run"),
                    "train_seconds": t.user_attrs.get("train_seconds"),
                    "note": t.user_attrs.get(COUNTED),
                    "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                }
                for t in trials
            ],
            "provenance": {
                "git_commit": git_commit(),
                "packages": package_versions(),
                "optuna": _version("optuna"),
                "config": self.base,
                "seed": self.cfg["seed"],
            },
        }
        write_json(self.out / STUDY_JSON, info)
        if best is None:
            raise ValueError(
                f"study '{self.study_name}': no trial completed ({budget['pruned']} pruned, "
                f"{budget['failed']} failed); no {BEST_YAML} written"
            )
        flat = {
            **best.params,
            "tuned.study": self.study_name,
            "tuned.trial": best.number,
            "tuned.objective": best.value,
            "tuned.objective_name": OBJECTIVE,
            "tuned.storage": storage,
            "tuned.budget": {k: budget[k] for k in ("trials", "epochs_per_trial", "max_seconds_per_trial")},
        }
        head = (
            f"# dans-kgc tune: best configuration of study '{self.study_name}' ({self.dataset}, sampler "
            f"{self.cfg['train']['sampler']}, {self.cfg['model']['name']}): trial {best.number}, valid MRR "
            f"{best.value:.4f}, {self.trials} trials x {budget['epochs_per_trial']} epochs.\n"
            f"# Use it as: dans-kgc train --config {self.out / BEST_YAML} (with the study's other settings)\n"
        )
        write_text(self.out / BEST_YAML, head + yaml.safe_dump(flat, sort_keys=False))
        log.info(
            "tune %s: best trial %d, valid MRR %.4f -> %s",
            self.study_name,
            best.number,
            best.value,
            self.out / BEST_YAML,
        )
        return info


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
