"""Experiment tracking, optional and off by default (``tracker.name: none``), as PyKEEN's result trackers.

A tracker receives what a training run writes anyway: the flattened config as parameters, each
trace.csv row as metrics at step = epoch (training loss, validation MRR / Hits when validated, epoch
seconds, the sampler's columns), the training summary (``summary/best_valid_mrr``,
``summary/best_epoch``, ``summary/train_seconds``, ``summary/steps``) at the last epoch, and later the
metrics of ``dans-kgc evaluate`` (``test/mrr``, ``test/hits@10``, ...) at that same step. Built in:
``tensorboard`` (event files, read with TensorBoard) and ``mlflow`` (any MLflow tracking URI: a SQLite
database ``sqlite:///mlflow.db``, a file store, a server); both come with ``pip install 'dans-kgc[tracking]'``.

Which run a tracker wrote goes into the run folder (``tracker.json``), so a resumed training and the
evaluation add to the same tracked run. Adding a tracker is one file (loaded with ``--plugin``)::

    from dans_kgc.trackers import ResultTracker, register

    @register
    class PrintTracker(ResultTracker):
        name = "print"

        def start_run(self, params):
            print(len(params), "parameters")
            return {}                       # what tracker.json keeps to continue this run later

        def log_metrics(self, metrics, step):
            print(step, metrics)

and ``--set tracker.name=print`` (or ``--tracker print``). No torch import here: the config check reads
the registry.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from dans_kgc.stages import flatten

log = logging.getLogger(__name__)

TRACKER_FILE = "tracker.json"  # in the run folder: which tracker wrote the run, and how to continue it
INSTALL_HINT = "pip install 'dans-kgc[tracking]'"
# exceptions that stop a run on purpose (a pruned tune trial, Ctrl-C): the tracked run ends as KILLED, not FAILED
STOPPED = ("TrialPruned", "KeyboardInterrupt")


class TrackerError(ValueError):
    """A tracker cannot be used (library missing, bad URI); one line naming the config key and the remedy."""


class ResultTracker:
    """One tracked run. ``settings`` is the config's ``tracker`` section; ``reference`` is what an earlier
    ``start_run`` returned (from the run folder's tracker.json): given, ``start_run`` continues that run."""

    name: ClassVar[str] = ""
    # (module to import, package that provides it): a missing one stops the run before it trains
    requires: ClassVar[tuple[str, str] | None] = None

    def __init__(
        self,
        settings: Mapping[str, Any],
        run_dir: Path,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        reference: Mapping[str, Any] | None = None,
    ):
        self.settings = dict(settings)
        self.run_dir = Path(run_dir)
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.reference = dict(reference) if reference else None

    @classmethod
    def check_available(cls) -> None:
        """Raise TrackerError when the tracker's library (``requires``) is missing."""
        if cls.requires is None:
            return
        module, package = cls.requires
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise TrackerError(
                f"config key 'tracker.name': the {cls.name} tracker needs the {package} package ({err}); "
                f"install it with {INSTALL_HINT}"
            ) from None

    def start_run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Open (or continue) the run, log ``params`` when it is new; returns what continues it later."""
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def end_run(self, status: str = "FINISHED") -> None:
        """``status``: FINISHED, FAILED, or KILLED (stopped on purpose)."""


TRACKERS: dict[str, type[ResultTracker]] = {}


def register(cls: type[ResultTracker]) -> type[ResultTracker]:
    """Class decorator: make ``cls`` selectable as ``tracker.name: <cls.name>`` (a later one replaces it)."""
    if not cls.name:
        raise ValueError(f"tracker {cls.__name__}: set the class attribute 'name'")
    TRACKERS[cls.name] = cls
    return cls


@register
class NoTracker(ResultTracker):
    """Tracking off: nothing is logged and no tracker.json is written."""

    name = "none"

    def start_run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass


@register
class TensorBoardTracker(ResultTracker):
    """Scalars per trace column (tag = column name), the config as a text summary ``params`` at step 0.
    Folder: ``tracker.dir/<run name>``, or ``RUN/tensorboard`` when ``tracker.dir`` is null. Values are
    stored as 32-bit floats (TensorBoard's scalar format)."""

    name = "tensorboard"
    requires = ("torch.utils.tensorboard", "tensorboard")  # torch's writer needs the tensorboard package

    def start_run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        if self.reference:
            log_dir = Path(self.reference["log_dir"])
        elif self.settings.get("dir"):
            log_dir = Path(self.settings["dir"]) / self.run_name
        else:
            log_dir = self.run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(log_dir))
        if not self.reference:
            rows = "\n".join(f"| {k} | {v} |" for k, v in params.items())
            self.writer.add_text("params", f"| key | value |\n|---|---|\n{rows}", global_step=0)
        return {"log_dir": str(log_dir.resolve())}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def end_run(self, status: str = "FINISHED") -> None:
        self.writer.close()


def _absolute_uri(uri: str) -> str:
    """A local store's URI with an absolute path, so evaluating from another folder finds the same store."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if uri.startswith("file:") and not uri.startswith("file:/"):
        return Path(uri[len("file:") :]).resolve().as_uri()
    if "://" not in uri and not uri.startswith("file:"):
        return Path(uri).resolve().as_uri()  # a bare folder: MLflow's file store
    return uri


def mlflow_key(key: str) -> str:
    """A metric name MLflow accepts (letters, digits, _ - . / : and spaces): ``hits@10`` -> ``hits_at_10``."""
    out = key.replace("@", "_at_")
    return "".join(c if c.isalnum() or c in "_-./: " else "_" for c in out)


@register
class MLflowTracker(ResultTracker):
    """One MLflow run per training run in experiment ``tracker.experiment``, at ``tracker.uri`` (null:
    MLflow's own default, MLFLOW_TRACKING_URI or its local store in the working folder); the run's
    ``--tag`` labels become MLflow tags. Metric names are made MLflow-safe (``valid_hits@10`` ->
    ``valid_hits_at_10``)."""

    name = "mlflow"
    requires = ("mlflow", "mlflow")

    def start_run(self, params: Mapping[str, Any]) -> dict[str, Any]:
        import mlflow
        from mlflow.exceptions import MlflowException

        uri = (self.reference or {}).get("uri") or self.settings.get("uri")
        try:
            if uri:
                mlflow.set_tracking_uri(uri)
            uri = _absolute_uri(mlflow.get_tracking_uri())
            mlflow.set_tracking_uri(uri)
            if self.reference:
                run = mlflow.start_run(run_id=self.reference["run_id"])
            else:
                experiment = mlflow.set_experiment(str(self.settings.get("experiment") or "dans-kgc"))
                run = mlflow.start_run(
                    experiment_id=experiment.experiment_id, run_name=self.run_name, tags=self.tags or None
                )
                mlflow.log_params({k: str(v) for k, v in params.items()})
        except MlflowException as err:
            raise TrackerError(
                f"config key 'tracker.uri' = {uri!r}: MLflow refused it: {str(err.message).splitlines()[0]}"
            ) from None
        return {"uri": uri, "experiment_id": run.info.experiment_id, "run_id": run.info.run_id}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        import mlflow

        mlflow.log_metrics({mlflow_key(k): v for k, v in metrics.items()}, step=step)

    def end_run(self, status: str = "FINISHED") -> None:
        import mlflow

        mlflow.end_run(status=status)


# ----------------------------------------------------------------------------------------
# what a training run and an evaluation call
# ----------------------------------------------------------------------------------------
def numeric_metrics(row: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite numbers of a trace row or metrics record (strings, lists and NaN are left out)."""
    return {
        k: float(v)
        for k, v in row.items()
        if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def run_name(out: Path) -> str:
    """The run folder as a name: relative to the working folder when below it, else its last part."""
    full = Path(out).resolve()
    try:
        return full.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return full.name


def tracker_class(name: str) -> type[ResultTracker]:
    if name not in TRACKERS:
        from dans_kgc.plugin_record import loaded_note

        raise TrackerError(
            f"config key 'tracker.name' = {name!r}; expected one of {', '.join(sorted(TRACKERS))} ({loaded_note()})"
        )
    return TRACKERS[name]


class RunTracking:
    """The tracker of one training run: ``log_epoch`` is the Trainer's per-epoch callback (each trace row);
    ``track(fit)`` opens the run, runs ``fit``, logs its summary and closes the run (FAILED / KILLED when
    ``fit`` raises). With ``resume``, the run recorded in ``out/tracker.json`` is continued."""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        out: Path,
        *,
        dataset: str,
        resume: bool = False,
        tags: Mapping[str, str] | None = None,
    ):
        settings = cfg.get("tracker") or {"name": "none"}
        self.cls = tracker_class(str(settings["name"]))
        self.cls.check_available()  # a missing library stops the run before it trains
        self.out = Path(out)
        self.params = {"dataset": dataset, **flatten(cfg)}
        recorded = read_reference(self.out) if resume else None
        if recorded is not None and recorded.get("name") != self.cls.name:
            recorded = None  # resumed under another tracker: a new tracked run
        self.tracker = self.cls(
            settings, self.out, run_name(self.out), tags, recorded.get("reference") if recorded else None
        )
        self.started = False

    @property
    def active(self) -> bool:
        return self.cls is not NoTracker

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.started:
            self.tracker.log_metrics(numeric_metrics(row, skip=("epoch",)), step=int(row["epoch"]))

    def track(self, fit: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        reference = self.tracker.start_run(self.params)
        self.started = True
        if self.active:
            write_reference(self.out, {"name": self.cls.name, "reference": reference})
        else:  # an untracked rerun in the folder: the evaluation must not log into an earlier tracked run
            (self.out / TRACKER_FILE).unlink(missing_ok=True)
        try:
            summary = fit(**kwargs)
        except BaseException as err:
            self.tracker.end_run("KILLED" if type(err).__name__ in STOPPED else "FAILED")
            raise
        final = {f"summary/{k}": summary[k] for k in ("best_valid_mrr", "best_epoch", "train_seconds", "steps")}
        self.tracker.log_metrics(numeric_metrics(final), step=int(summary["epochs_run"]))
        self.tracker.end_run("FINISHED")
        return summary


def read_reference(out: Path) -> dict[str, Any] | None:
    path = Path(out) / TRACKER_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise TrackerError(f"{path}: not valid JSON ({err}); delete it to start a new tracked run") from None


def write_reference(out: Path, record: Mapping[str, Any]) -> None:
    from dans_kgc.utils import write_json

    write_json(Path(out) / TRACKER_FILE, dict(record))


def log_evaluation(run: Path, split: str, metrics: Mapping[str, Any], step: int) -> bool:
    """Add an evaluation's metrics (``{split}/mrr``, ``{split}/hits@10``, ...) at ``step`` to the tracked run
    of the run folder ``run``; False when the run was trained without a tracker."""
    recorded = read_reference(run)
    if recorded is None:
        return False
    cls = tracker_class(str(recorded["name"]))
    cls.check_available()
    tracker = cls({}, Path(run), run_name(run), reference=recorded.get("reference") or {})
    tracker.start_run({})
    keys = ("mrr", "hits@1", "hits@3", "hits@10", "num_ranked")
    try:
        tracker.log_metrics(numeric_metrics({f"{split}/{k}": metrics[k] for k in keys if k in metrics}), step)
    finally:
        tracker.end_run("FINISHED")
    return True
