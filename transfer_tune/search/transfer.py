"""From a finished proxy study to the target: the µP plan, then one target run.

The plan reads the multipliers from :mod:`transfer_tune.core.parametrization` (µP with
``K_base`` = the proxy's K and, when the target is wider, the proxy's shapes as the base of
the width rule); batch size and betas are unchanged. The proxy may have trained on a coarser
grid than the target (:func:`transfer_tune.search.tune.tune`'s ``resolution``): the target
trains and is tested on the full grid, which the plan records. The target run is recorded in
the same storage as its own study (user attributes link the two), with its per-epoch
validation losses as intermediate values, its test error at the training resolution and at a
finer one, its wall time, and a checkpoint next to the storage.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from pdes import load_problem
from pdes.checks import as_int
from transfer_tune.core import checkpoint as checkpoint_io
from transfer_tune.core import distributed
from transfer_tune.core.adapters import ROLES, tensor_state
from transfer_tune.core.base_shapes import WIDTH_CLASSES
from transfer_tune.core.base_shapes import base_shapes as read_base_shapes
from transfer_tune.core.factory import build_model, check_model_allowed, shapes_model
from transfer_tune.core.flops import train_step_flops
from transfer_tune.core.hparams import OPTIMIZERS, HParams
from transfer_tune.core.model import check_modes
from transfer_tune.core.parametrization import (
    RULES,
    Parametrization,
    display_name,
    get_parametrization,
)
from transfer_tune.core.train import (
    TrainData,
    evaluate,
    evaluate_physics,
    fit,
    relative_l2,
    resolve_device,
)
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.preflight import (
    added_target_energy,
    check_target,
    check_target_args,
    check_target_k,
    energy_warning,
)
from transfer_tune.search.proxy import ProxySetup, best_values
from transfer_tune.search.search_space import SearchSpace
from transfer_tune.search.sides import describe
from transfer_tune.search.storage import (
    check_study_name,
    checkpoint_dir,
    get_storage,
    normalize_url,
    safe_filename,
)
from transfer_tune.search.studies import create_study, open_study
from transfer_tune.search.workers import WORKER_ATTR, record_worker, trial_worker_gone

#: The target study's objective, as the dashboard names it (``metrics["test_l2"]``: outputs
#: and targets decoded to physical units before the relative L2).
METRIC_NAME = "test rel-L2 (physical units)"


@dataclass
class GroupPlan:
    """One group of the target's parameters (a role, and how its shape grows from the
    proxy's): its multipliers and its learning rate."""

    role: str
    lr_multiplier: float
    init_multiplier: float
    lr: float
    weight_decay: float = 0.0
    width: str = "fixed"
    #: How tables name it: the role, or "role (width class)" when a role has several groups.
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.role


@dataclass
class TargetPlan:
    """What the target run will use: per-group rates and init scales, batch size, betas."""

    proxy_study: str
    modes: int
    base_modes: int
    dim: int
    lr: float
    batch_size: int
    beta1: float
    beta2: float
    epochs: int
    model: dict
    parametrization: dict
    train: dict
    groups: list[GroupPlan] = field(default_factory=list)
    #: Fraction of the target's (non-mean) energy kept by the target's K and not by the
    #: searched model's (``None`` when it could not be measured).
    added_energy: float | None = None
    #: The problem the target trains on (``None``: the proxy study's own problem).
    problem: dict | None = None
    #: Per axis (modes, width, resolution, epochs): the proxy's and the target's values.
    proxy: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    #: One training step of the proxy over one of the target (FLOP estimate).
    step_flop_ratio: float | None = None

    def energy_warning(self) -> str | None:
        """One line when the target's K adds (almost) nothing the searched model lacks."""
        return energy_warning(self.added_energy, self.modes)

    def hparams(self) -> HParams:
        """Training hyperparameters of the target run (base rate; groups scale it)."""
        values = {"lr": self.lr, "batch_size": self.batch_size}
        return HParams(**{**self.train, **values, "beta1": self.beta1, "beta2": self.beta2})

    def to_dict(self) -> dict:
        """Plain data (stored in the target study and the checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TargetPlan:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["groups"] = [GroupPlan(**g) for g in data.get("groups", [])]
        return cls(**data)

    def rule_text(self) -> str:
        """The rule in words: ``"µP"``, ``"SP"`` or the calibrated exponent and its source."""
        par = self.parametrization
        kind = par.get("kind", "mup")
        if kind == "calibrated":
            return (
                f"calibrated rule (R's lr x (ln K_base / ln K)^{par['lr_exponent']:.3g}, "
                f"init ^{par['init_exponent']:.3g}; fitted by transfer-tune calibrate)"
            )
        return display_name(kind)

    def loss_text(self) -> str | None:
        """``loss="pino"``: its weights, and that they transfer unchanged; else ``None``."""
        hp = self.hparams()
        if hp.loss != "pino":
            return None
        fine = (
            f", residual on {hp.physics_resolution} points"
            if hp.physics_resolution is not None
            else ""
        )
        return (
            f"loss: pino (data weight {hp.data_weight:.4g}, physics weight "
            f"{hp.physics_weight:.4g}{fine}); loss weights transfer unchanged (µP rescales "
            "initial scales and learning rates, never a loss weight)"
        )

    def table(self) -> str:
        """The plan as a text table (what the CLI prints)."""
        lines = [
            f"{self.rule_text()} transfer: K {self.base_modes} (proxy) -> {self.modes} "
            f"(target), d = {self.dim}",
        ]
        if self.proxy and self.target:
            lines.append(describe(self.proxy, self.target, self.step_flop_ratio))
        lines += [
            f"batch size {self.batch_size}, betas ({self.beta1:.4g}, {self.beta2:.6g}), "
            f"{self.epochs} epochs",
        ]
        loss = self.loss_text()
        if loss:
            lines.append(loss)
        lines += [
            f"{'group':<20} {'init x':>10} {'lr x':>10} {'lr':>12}",
        ]
        for g in self.groups:
            lines.append(
                f"{g.name:<20} {g.init_multiplier:>10.6f} {g.lr_multiplier:>10.6f} {g.lr:>12.4e}"
            )
        if self.added_energy is not None:
            lines.append(
                f"target energy kept by K = {self.modes} and not by the proxy's K: "
                f"{self.added_energy:.2e}"
            )
        return "\n".join(lines)


#: Study user attribute holding a calibration (:mod:`transfer_tune.analysis.calibrate`).
CALIBRATION_ATTR = "calibration"


def rule_parametrization(study: optuna.Study, rule: str = "mup") -> Parametrization:
    """The parametrization of ``rule`` relative to the proxy study's K_base.

    ``"mup"`` is the study's own (µP); ``"sp"`` SP at the same K_base; ``"calibrated"`` the
    exponent fitted by ``transfer-tune calibrate`` and stored on the study.
    """
    setup = ProxySetup.from_study(study)
    if not isinstance(rule, str) or rule.lower() not in RULES:
        raise TransferTuneError(f"unknown transfer rule {rule!r}; choose one of {', '.join(RULES)}")
    rule = rule.lower()
    stored = dict(setup.parametrization)
    if rule == "mup" and stored.get("kind") == "mup":
        return get_parametrization(**stored)
    base = {"base_modes": stored["base_modes"], "spectral_std": stored.get("spectral_std")}
    if rule != "calibrated":
        return get_parametrization(rule, **base)
    calibration = study.user_attrs.get(CALIBRATION_ATTR)
    if not calibration:
        raise TransferTuneError(
            f"proxy study {study.study_name!r} has no calibration: run `transfer-tune calibrate "
            f"{study.study_name}` (transfer_tune.calibrate) first, or use --rule mup"
        )
    if calibration.get("base_modes") != stored["base_modes"]:
        raise TransferTuneError(
            f"the calibration of {study.study_name!r} is relative to K_base = "
            f"{calibration.get('base_modes')}, the study's K_base is {stored['base_modes']}; "
            "run `transfer-tune calibrate` again"
        )
    return get_parametrization(
        "calibrated",
        **base,
        lr_exponent=float(calibration["alpha"]),
        init_exponent=float(calibration.get("init_exponent", 0.5)),
    )


def _plan_groups(par: Parametrization, model: torch.nn.Module, lr: float, hp: HParams):
    """One :class:`GroupPlan` per (role, width class, multipliers) of ``model``'s table."""
    decoupled = OPTIMIZERS[hp.optimizer][1]
    keys: dict[tuple, GroupPlan] = {}
    for row in par.table(model):
        key = (row.role, row.width, row.lr_multiplier, row.init_multiplier)
        if key not in keys:
            keys[key] = GroupPlan(
                row.role,
                row.lr_multiplier,
                row.init_multiplier,
                lr * row.lr_multiplier,
                par.group_weight_decay(hp.weight_decay, row.lr_multiplier, decoupled),
                width=row.width,
            )
    order = {role: i for i, role in enumerate(ROLES)}
    groups = sorted(keys.values(), key=lambda g: (order[g.role], WIDTH_CLASSES.index(g.width)))
    for g in groups:
        if sum(other.role == g.role for other in groups) > 1:
            g.name = f"{g.role} ({g.width})"
    return groups


def _target_problem(setup: ProxySetup, resolution: int | None):
    """The problem the target trains on: the full grid the proxy's was coarsened from."""
    problem = load_problem(setup.target_problem or setup.problem)
    if resolution is None or resolution == problem.resolution:
        return problem
    if problem.is_file:
        raise TransferTuneError(
            f"target resolution {resolution}: a file problem's target trains on the file's own "
            f"grid ({problem.resolution}); leave the target's resolution out"
        )
    return problem.with_overrides(resolution=resolution, keep_normalizers=False)


def plan_transfer(
    study: optuna.Study,
    target_modes: int,
    epochs: int | None = None,
    rule: str = "mup",
    *,
    eval_resolution: int | None = None,
    allow_smaller: bool = False,
    width: int | None = None,
    resolution: int | None = None,
) -> TargetPlan:
    """The target plan from the best trial of a proxy ``study`` and the target's size.

    ``rule``: ``"mup"`` (default), ``"sp"``, or ``"calibrated"`` (the exponent that
    ``transfer-tune calibrate`` stored on the study; :func:`rule_parametrization`).
    ``width`` (default the proxy's) and ``resolution`` (default the grid the proxy's problem
    was coarsened from, else its own) are the target's; a wider target gets µP's width rule
    with the proxy's shapes as its base (SP reuses every value unchanged). ``epochs`` and
    ``eval_resolution`` (the grid the target will be evaluated on) are checked here, before a
    plan exists. A target K smaller than the proxy's is an error unless ``allow_smaller`` (µP
    transfers upward; see :func:`check_target_k`).
    """
    check_target_args(target_modes, epochs, eval_resolution)
    setup = ProxySetup.from_study(study)
    check_target_k(int(setup.model["modes"]), target_modes, allow_smaller)
    proxy_width = int(setup.model["width"])
    width = proxy_width if width is None else as_int(width, "target width")
    if width < proxy_width:
        raise TransferTuneError(
            f"target width {width} is narrower than the proxy's {proxy_width}: µP's width rule "
            "transfers to wider models"
        )
    base = rule_parametrization(study, rule)
    values = best_values(study)
    proxy_problem = load_problem(setup.problem)
    problem = _target_problem(setup, resolution)
    check_modes(target_modes, problem.grid_shape)  # before any plan
    fine = problem.fine_test_problem(eval_resolution)
    if fine is not None:
        check_modes(target_modes, fine.grid_shape)
    dim = setup.model["dim"]
    target_model = {**setup.model, "modes": target_modes, "width": width}
    target = shapes_model(target_model)
    if width != proxy_width:
        shapes = read_base_shapes(shapes_model(setup.model))
        base = Parametrization.from_dict({**base.to_dict(), "base_shapes": shapes})
    tuned = {k: v for k, v in values.items() if k not in ("lr", "batch_size", "beta1", "beta2")}
    train = {**setup.train, **tuned}  # e.g. a searched weight_decay
    hp = HParams(**train)
    epochs = epochs if epochs is not None else setup.epochs
    batch = values["batch_size"]
    proxy_hp = HParams(**{**setup.train, **tuned})
    step_ratio = pino_step_flops(proxy_hp, setup.model, proxy_problem.grid_shape, batch) / (
        pino_step_flops(hp, target_model, problem.grid_shape, batch)
    )
    return TargetPlan(
        proxy_study=study.study_name,
        modes=target_modes,
        base_modes=base.base_modes,
        dim=dim,
        lr=values["lr"],
        batch_size=batch,
        beta1=values["beta1"],
        beta2=values["beta2"],
        epochs=epochs,
        model=target_model,
        parametrization=base.to_dict(),
        train=train,
        groups=_plan_groups(base, target, values["lr"], hp),
        added_energy=added_target_energy(problem, setup.model["modes"], target_modes),
        problem=None if problem.config() == proxy_problem.config() else problem.config(),
        proxy={
            "modes": int(setup.model["modes"]),
            "width": proxy_width,
            "resolution": proxy_problem.resolution,
            "epochs": setup.epochs,
        },
        target={
            "modes": target_modes,
            "width": width,
            "resolution": problem.resolution,
            "epochs": epochs,
        },
        step_flop_ratio=step_ratio,
    )


def physics_grid(hparams: HParams, grid: tuple[int, ...]) -> tuple[int, ...] | None:
    """The finer grid ``loss="pino"`` evaluates the residual on (``physics_resolution``), or
    ``None`` when the residual is on ``grid`` itself or training uses none."""
    fine = hparams.physics_resolution
    if not hparams.physics or fine is None or fine <= grid[0]:
        return None
    return (fine,) * len(grid)


def pino_step_flops(hparams: HParams, config: dict, grid: tuple[int, ...], batch: int) -> float:
    """One training step's FLOPs, with the extra pass on the physics grid when there is one
    (:func:`physics_grid`); the residual itself is left out (small against the FNO)."""
    flops = train_step_flops(config, grid, batch)
    fine = physics_grid(hparams, grid)
    return flops if fine is None else flops + train_step_flops(config, fine, batch)


@dataclass
class TargetResult:
    """The large-K run: metrics, curves, checkpoint, and the study that records it."""

    study_name: str
    metrics: dict[str, Any]
    history: list[dict]
    checkpoint: str

    def __str__(self) -> str:
        m = self.metrics
        fine = (
            f", at {m['fine_resolution']} points {m['test_l2_fine']:.4f}"
            if m.get("test_l2_fine") is not None
            else ""
        )
        residual = ""
        if m.get("test_residual") is not None:
            residual = f"; test residual {m['test_residual']:.4g}"
            if m.get("test_residual_fine") is not None:
                residual += f" ({m['test_residual_fine']:.4g} at {m['fine_resolution']} points)"
        return (
            f"target K={m['modes']}: test rel-L2 {m['test_l2']:.4f} (physical units){fine}"
            f"{residual}; {m['seconds']:.1f} s"
        )


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`run_target` (never unpickles: weights_only)."""
    return checkpoint_io.load(path)


@torch.no_grad()
def physical_error(model: torch.nn.Module, problem, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean relative L2 test error in physical units (outputs decoded)."""
    model.eval()
    preds = torch.cat([model(x[i : i + 64]) for i in range(0, x.shape[0], 64)])
    return float(relative_l2(problem.decode_y(preds), problem.decode_y(y)))


def _start_target_study(
    store,
    name: str,
    plan: TargetPlan,
    problem_config: dict,
    take_over: bool = False,
    search_space: dict | None = None,
):
    """Create (or reopen after a crash) the target study and open its one trial (rank 0).

    The trial records what is run: lr, batch_size, beta1, beta2 as Optuna parameters (within
    the proxy's ``search_space`` ranges) and each group's learning rate as ``lr_<role>``.
    """
    study = create_study(name, store, metric_name=METRIC_NAME)
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TransferTuneError(
            f"target study {name!r} already holds a finished run; choose another study_name"
        )
    if study.user_attrs.get("kind") == "target" and study.user_attrs.get("plan") != plan.to_dict():
        raise TransferTuneError(
            f"target study {name!r} was started with another plan; choose another study_name"
        )
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = stale.user_attrs.get(WORKER_ATTR)
        if tag is not None and not take_over and not trial_worker_gone(stale):
            where = "on this machine" if tag.rpartition(":")[0] == socket.gethostname() else ""
            raise TransferTuneError(
                f"target study {name!r} is being trained right now by process {tag} {where}"
                "; wait for it to finish, or, if that process is dead on another machine, "
                "pass take_over=True (CLI --take-over) to resume its run here"
            )
        # a run killed before it finished: this launch resumes it from its training state
        study.tell(stale.number, state=TrialState.FAIL)
    attrs = {"kind": "target", "proxy_study": plan.proxy_study, "plan": plan.to_dict()}
    for key, value in {**attrs, "problem": problem_config}.items():
        study.set_user_attr(key, value)
    values = {k: getattr(plan, k) for k in ("lr", "batch_size", "beta1", "beta2")}
    study.enqueue_trial(values)  # the values ask() gives the trial's parameters
    trial = study.ask(SearchSpace.from_dict(search_space).distributions_of(values))
    record_worker(trial)
    trial.set_user_attr("hparams", values)
    for g in plan.groups:
        trial.set_user_attr(f"lr_{g.name}", g.lr)
    return study, trial


@contextmanager
def _fail_trial_on_os_error(study: optuna.Study, trial: optuna.Trial, what: str, advice: str):
    """Fail the target's trial and say in one line why, when writing ``what`` fails."""
    try:
        yield
    except OSError as exc:
        study.tell(trial, state=TrialState.FAIL)
        raise TransferTuneError(f"cannot write {what}: {exc.strerror or exc}; {advice}") from exc


def _writable_folder(folder: Path, study: optuna.Study, trial: optuna.Trial) -> None:
    """Create the checkpoint folder and check it takes a file, before any training."""
    advice = "free space or choose a storage in a writable folder"
    with _fail_trial_on_os_error(study, trial, f"checkpoints to {folder}", advice):
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()


def run_target(
    plan: TargetPlan,
    storage: str | None = None,
    *,
    study_name: str | None = None,
    eval_resolution: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    take_over: bool = False,
) -> TargetResult:
    """Train the target FNO of ``plan`` once and record it in ``storage``.

    The training state is saved after every epoch next to the storage (``<checkpoints>/
    <safe name>.state.pt``; :func:`~transfer_tune.search.storage.safe_filename` keeps any study
    name inside that folder); launching the same run again after a crash resumes from it and
    ends as the uninterrupted run would. Once the final checkpoint is written and the trial
    told, the training state is removed. Under ``torchrun`` the global batch is
    split across ranks and only rank 0 writes to the storage and the checkpoints.

    Parameters
    ----------
    plan : TargetPlan
        From :func:`plan_transfer`.
    storage : str, optional
        The storage holding the proxy study; the target study is created there.
    study_name : str, optional
        Default ``"{proxy_study}-target-K{modes}"``.
    eval_resolution : int, optional
        The finer grid for the super-resolution test error; default twice the training
        resolution when the problem can produce it.
    take_over : bool
        Resume a RUNNING run of this target whose process cannot be probed (another machine)
        and is known to be dead; a live run on this machine is never taken over.
    """
    if study_name is not None:
        check_study_name(study_name, "target study name")
    check_model_allowed(plan.model)  # the study names the factory: this machine must allow it
    url = normalize_url(storage)
    store = get_storage(url)
    proxy = open_study(plan.proxy_study, store)
    setup = ProxySetup.from_study(proxy)
    problem = load_problem(plan.problem or setup.problem)
    check_target(  # before the study opens
        problem,
        plan.modes,
        plan.epochs,
        eval_resolution,
        model=plan.model,
        batch_size=plan.batch_size,
    )
    wider = plan.target.get("width") != plan.proxy.get("width")
    suffix = f"-w{plan.target['width']}" if plan.target and wider else ""
    name = study_name or f"{plan.proxy_study}-target-K{plan.modes}{suffix}"
    distributed.init_from_env(resolve_device(device))
    main = distributed.is_main()
    if main:
        study, trial = _start_target_study(
            store, name, plan, plan.problem or setup.problem, take_over, setup.search_space
        )
        problem.dataset("train"), problem.dataset("val")  # generate once, then the others read
    distributed.barrier()

    par = get_parametrization(**plan.parametrization)
    model = build_model(plan.model, seed=seed)
    par.initialize(model, generator=torch.Generator().manual_seed(seed))
    hparams = plan.hparams()
    data = TrainData.from_problem(problem, hparams)
    folder = checkpoint_dir(url)
    if main:
        _writable_folder(folder, study, trial)  # before training, not after it

    reported: set[int] = set()

    def report(record) -> None:
        if main:
            trial.report(record.val_loss, record.epoch)
            reported.add(record.epoch)

    state_path = folder / safe_filename(name, ".state.pt")
    start = time.perf_counter()
    try:
        result = fit(
            model,
            data,
            hparams,
            plan.epochs,
            [report],
            parametrization=par,
            seed=seed,
            device=device,
            progress=progress,
            description=f"target K={plan.modes}",
            checkpoint=state_path,
        )
    except BaseException:
        if main:
            study.tell(trial, state=TrialState.FAIL)
        raise
    seconds = time.perf_counter() - start
    history = result.to_dict()["history"]
    path = folder / safe_filename(name, ".pt")
    if not main:
        return TargetResult(study_name=name, metrics={}, history=history, checkpoint=str(path))
    for record in result.history:
        if record.epoch not in reported:  # epochs restored from a resumed training state
            trial.report(record.val_loss, record.epoch)
    model = model.cpu()
    xt, yt = problem.dataset("test")
    metrics: dict[str, Any] = {
        "modes": plan.modes,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "test_loss": evaluate(model, xt, yt),
        "test_l2": physical_error(model, problem, xt, yt),
        "resolution": problem.resolution,
        "seconds": seconds,
        "train_seconds": result.seconds,
        "steps": result.steps,
        "world_size": distributed.world_size(),
    }
    if problem.physics is not None:  # the equation's residual, whichever loss trained it
        metrics["test_residual"] = evaluate_physics(model, xt, problem.physics)
    fine = problem.fine_test_problem(eval_resolution)
    if fine is not None:
        check_modes(plan.modes, fine.grid_shape)
        xf, yf = fine.dataset("test")
        metrics["fine_resolution"] = fine.resolution
        metrics["test_l2_fine"] = physical_error(model, fine, xf, yf)
        if fine.physics is not None:
            metrics["test_residual_fine"] = evaluate_physics(model, xf, fine.physics)
    advice = (
        "the training state next to it is kept: free space and run the same command again to finish"
    )
    with _fail_trial_on_os_error(study, trial, f"the checkpoint {path}", advice):
        checkpoint_io.save(
            path,
            {
                "model_state": tensor_state(model),
                "model_config": plan.model,
                "parametrization": plan.parametrization,
                "plan": plan.to_dict(),
                "problem": plan.problem or setup.problem,
                "normalizers": problem.normalizers.state_dict(),
                "metrics": metrics,
                "history": history,
            },
        )
    trial.set_user_attr("metrics", metrics)
    study.set_user_attr("metrics", metrics)
    study.set_user_attr("checkpoint", str(path))
    study.tell(trial, metrics["test_l2"])
    state_path.unlink(missing_ok=True)  # the run is finished: nothing is left to resume
    proxy.set_user_attr("target_study", name)
    return TargetResult(study_name=name, metrics=metrics, history=history, checkpoint=str(path))


def transfer(
    study: str | optuna.Study,
    target_modes: int,
    storage: str | None = None,
    *,
    epochs: int | None = None,
    allow_smaller: bool = False,
    width: int | None = None,
    resolution: int | None = None,
    **run_kwargs: Any,
) -> tuple[TargetPlan, TargetResult]:
    """Plan and run the target from a proxy study (by name, from any earlier process).

    ``allow_smaller``: train a target K below the proxy's anyway; ``width`` and
    ``resolution``: the target's (see :func:`plan_transfer`).
    """
    if isinstance(study, str):
        check_study_name(study)
        url = normalize_url(storage)
        study = open_study(study, get_storage(url, must_exist=True))
        storage = url
    plan = plan_transfer(
        study,
        target_modes,
        epochs,
        eval_resolution=run_kwargs.get("eval_resolution"),
        allow_smaller=allow_smaller,
        width=width,
        resolution=resolution,
    )
    return plan, run_target(plan, storage, **run_kwargs)
