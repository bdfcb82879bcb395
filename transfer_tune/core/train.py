"""Training loop: relative L2 (and PDE residual) loss, per-role rates, clipping, schedules,
callbacks, resume.

The whole dataset stays as tensors on the device and batches are drawn by index: there is no
per-sample Python in the loop. The hyperparameters (:class:`HParams`, their checks, the
optimizer) live in :mod:`transfer_tune.core.hparams`: import them from there, not from here.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pdes.checks import as_int
from pdes.physics import Physics, no_physics_message
from transfer_tune.core import checkpoint as checkpoint_io
from transfer_tune.core import distributed
from transfer_tune.core.adapters import tensor_state
from transfer_tune.core.hparams import HParams, make_optimizer
from transfer_tune.core.parametrization import Parametrization
from transfer_tune.errors import DivergenceError, TransferTuneError

if TYPE_CHECKING:
    from pdes import Problem


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else CPU; anything else as torch reads it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise TransferTuneError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from exc
    if resolved.type not in ("cpu", "cuda", "mps", "xpu"):
        raise TransferTuneError(
            f"device {device!r} cannot train a model (it holds no data); use 'auto', 'cpu' or "
            "'cuda'"
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TransferTuneError(
            f"device {device!r} asked for, but this PyTorch sees no CUDA GPU; use 'cpu' or 'auto'"
        )
    return resolved


def relative_l2(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Relative L2 error ``||pred - target|| / ||target||`` per sample, averaged over the batch.

    The mean (not the sum) over the batch keeps the learning rate independent of the batch
    size. ``reduction="none"`` returns the per-sample errors, ``"sum"`` their sum.
    """
    diff = (pred - target).flatten(1).norm(dim=1)
    norm = target.flatten(1).norm(dim=1).clamp_min(torch.finfo(target.dtype).tiny)
    err = diff / norm
    if reduction == "none":
        return err
    return err.sum() if reduction == "sum" else err.mean()


@dataclass
class TrainData:
    """Training and validation tensors, shaped ``(N, C, *grid)``.

    ``y_train`` may be ``None`` for physics-only training (``loss="pino"``,
    ``data_weight=0``). ``physics`` is the problem's residual loss
    (:attr:`pdes.Problem.physics`), needed by ``loss="pino"``; ``x_physics`` holds the same
    training samples' inputs on a finer grid, where the residual is then evaluated.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    physics: Physics | None = None
    x_physics: torch.Tensor | None = None

    def __post_init__(self) -> None:
        pairs = [("train", self.x_train, self.x_train if self.y_train is None else self.y_train)]
        if (self.x_val is None) != (self.y_val is None):
            raise TransferTuneError("give both x_val and y_val, or neither")
        if self.x_val is not None:
            pairs.append(("val", self.x_val, self.y_val))
        for split, x, y in pairs:
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise TransferTuneError(f"{split} data must be torch tensors")
            if x.dim() < 3 or y.dim() < 3:
                raise TransferTuneError(
                    f"{split} data must be shaped (N, C, *grid); got x {tuple(x.shape)}, "
                    f"y {tuple(y.shape)}"
                )
            if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
                raise TransferTuneError(
                    f"{split} x and y disagree: x {tuple(x.shape)}, y {tuple(y.shape)} "
                    "(same number of samples and the same grid expected)"
                )
            if x.shape[0] == 0:
                raise TransferTuneError(f"{split} split is empty")
        if self.x_physics is not None:
            xp, x = self.x_physics, self.x_train
            if xp.dim() != x.dim() or xp.shape[:2] != x.shape[:2]:
                raise TransferTuneError(
                    f"x_physics {tuple(xp.shape)} must hold the training samples' inputs "
                    f"{tuple(x.shape)} on another grid (same samples and channels)"
                )

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @classmethod
    def from_problem(cls, problem: Problem, hparams: HParams | None = None) -> TrainData:
        """The train and validation splits of ``problem`` (normalised), with its residual.

        ``hparams.physics_resolution`` (with ``loss="pino"``) adds the training inputs on
        that finer grid (the same samples, solved there; :attr:`x_physics`).
        """
        x, y = problem.dataset("train")
        xv, yv = problem.dataset("val")
        x_physics = None
        if hparams is not None and hparams.physics:
            if not problem.has_physics:
                raise TransferTuneError(no_physics_message(problem.name))
            fine = hparams.physics_resolution
            if fine is not None and fine != problem.resolution:
                if fine < problem.resolution:
                    raise TransferTuneError(
                        f"physics_resolution {fine} is coarser than the training grid "
                        f"({problem.resolution}); give a finer grid, or none"
                    )
                x_physics = problem.with_overrides(resolution=fine).dataset("train")[0]
        return cls(x, y, xv, yv, physics=problem.physics, x_physics=x_physics)


@dataclass
class EpochRecord:
    """What one epoch produced; passed to every callback."""

    epoch: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    #: ``loss="pino"``: the epoch's mean training residual loss, and the validation one
    #: (``train_loss`` is then the weighted objective; ``val_loss`` stays the data error).
    physics_loss: float | None = None
    val_physics_loss: float | None = None


@dataclass
class TrainResult:
    """Outcome of :func:`fit`."""

    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    stopped_early: bool = False

    @property
    def train_loss(self) -> float:
        """Final epoch's mean training loss."""
        return self.history[-1].train_loss

    @property
    def val_loss(self) -> float | None:
        """Final epoch's validation loss (``None`` without validation data)."""
        return self.history[-1].val_loss

    def to_dict(self) -> dict:
        """Plain data (curves included)."""
        return {
            "history": [asdict(r) for r in self.history],
            "seconds": self.seconds,
            "steps": self.steps,
            "stopped_early": self.stopped_early,
        }


Callback = Callable[[EpochRecord], "bool | None"]
#: HParams fields added with physics-informed training (absent from older saved states).
_PHYSICS_FIELDS = ("loss", "data_weight", "physics_weight", "physics_resolution")


@torch.no_grad()
def _means(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    physics: Physics | None,
    batch_size: int,
) -> tuple[float | None, float | None]:
    """Mean relative L2 error against ``y`` and mean residual loss under ``physics`` (each
    ``None`` when not asked for) of ``model`` on ``x``, from one batched forward pass in eval
    mode."""
    was_training = model.training
    model.eval()
    error = torch.zeros((), dtype=torch.float64, device=x.device)
    residual = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        pred = model(xb)
        if y is not None:
            error += relative_l2(pred, y[start : start + batch_size], reduction="sum").double()
        if physics is not None:
            residual += physics(xb, pred).sum().double()
    model.train(was_training)
    n = x.shape[0]
    return (
        None if y is None else float(error) / n,
        None if physics is None else float(residual) / n,
    )


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float:
    """Mean relative L2 error of ``model`` on ``(x, y)``, evaluated in batches."""
    return _means(model, x, y, None, batch_size)[0]


def evaluate_physics(
    model: nn.Module, x: torch.Tensor, physics: Physics, batch_size: int = 64
) -> float:
    """Mean PDE residual loss (:attr:`pdes.Problem.physics`) of ``model``'s outputs on ``x``.

    ``x`` may be on any grid the model accepts: the residual reads its spacing from the shape.
    """
    return _means(model, x, None, physics, batch_size)[1]


def _check_physics(hparams: HParams, data: TrainData) -> None:
    """Raise :class:`TransferTuneError` when ``data`` cannot give what ``hparams`` trains on."""
    if hparams.uses_labels and data.y_train is None:
        raise TransferTuneError(
            "training labels are missing (y_train is None); only physics-only training "
            "(loss='pino', data_weight=0) runs without them"
        )
    if hparams.physics and data.physics is None:
        raise TransferTuneError(
            "loss='pino' needs the problem's PDE residual (TrainData.physics, e.g. "
            "problem.physics); this data has none"
        )
    if data.x_physics is not None and not hparams.physics:
        raise TransferTuneError("x_physics is given but loss='pino' is not (nothing uses it)")


def _diverged(loss: float, threshold: float) -> bool:
    return not (math.isfinite(loss) and loss <= threshold)


def _schedule(hparams: HParams, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    total = max(1, steps_per_epoch * epochs)
    if hparams.schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    if hparams.schedule == "step":
        return lambda step: hparams.gamma ** ((step // steps_per_epoch) // hparams.step_size)
    return lambda step: 1.0


@torch.no_grad()
def clip_gradients(params: Iterable[nn.Parameter], clip: str | None, value: float) -> None:
    """Clip gradients in place by global norm or element-wise by value (complex-aware).

    Element-wise clipping of a complex gradient clips its real and imaginary parts.
    """
    params = [p for p in params if p.grad is not None]
    if clip is None or not params:
        return
    if clip == "norm":
        torch.nn.utils.clip_grad_norm_(params, value)
        return
    for p in params:
        grad = torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad
        grad.clamp_(-value, value)


def _check_not_all_zero(model: nn.Module) -> None:
    """Raise :class:`TransferTuneError` when every parameter of ``model`` is zero.

    Such a model was never initialised: an all-zero FNO predicts zero (relative L2 error
    exactly 1) and its weights get no gradient, so training would sit at 1.000 forever
    without a word.
    """
    params = list(model.parameters())
    if not params:
        return
    with torch.no_grad():
        if any(bool(p.ne(0).any()) for p in params):
            return
    raise TransferTuneError(
        f"every parameter of this {type(model).__name__} is zero (all zero: never "
        "initialised), so it cannot learn: an all-zero FNO predicts zero, its weights get no "
        "gradient and the loss stays at 1.000. Initialise it first: "
        "get_parametrization(kind, base_modes).initialize(model, generator), or "
        "model.reset_parameters() for transfer-tune's FNO"
    )


def fit(
    model: nn.Module,
    data: TrainData,
    hparams: HParams,
    epochs: int,
    callbacks: Iterable[Callback] = (),
    *,
    parametrization: Parametrization | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    progress: bool = False,
    eval_batch_size: int = 64,
    description: str = "train",
    divergence_threshold: float = 1e3,
    checkpoint: str | Path | None = None,
    roles: Any = None,
) -> TrainResult:
    """Train ``model`` with Adam or AdamW on the relative L2 loss; evaluate on validation.

    With ``hparams.loss == "pino"`` the loss is ``data_weight * relative L2 +
    physics_weight * data.physics(x, prediction)`` (physics-informed training); each epoch
    then also records the mean training and validation residual losses, and ``train_loss``
    is the weighted objective. ``val_loss`` is always the relative L2 error on validation.

    Parameters
    ----------
    model : nn.Module
        An initialised model (see :meth:`Parametrization.initialize`): transfer-tune's FNO,
        neuraloperator's ``FNO``, or any module whose spectral weights ``roles`` names.
    data : TrainData
        Training (and optional validation) tensors; moved to ``device`` once.
    hparams : HParams
        Learning rate, batch size, betas, clipping and schedule.
    epochs : int
        Number of passes over the training set.
    callbacks : iterable of callables
        Each is called with an :class:`EpochRecord` after every epoch; returning ``True``
        stops training (exceptions such as ``optuna.TrialPruned`` propagate).
    parametrization : Parametrization, optional
        Gives the per-role learning rates; SP at the model's own K by default.
    seed : int
        Seeds the order of the batches.
    device : str or torch.device
        ``"auto"`` picks CUDA when available.
    progress : bool
        Show a progress bar over epochs.
    divergence_threshold : float
        A mean relative L2 error above this also counts as divergence (a zero prediction
        scores 1, so 1e3 is far past any useful run; a huge finite loss is as lost as NaN).
    checkpoint : path, optional
        Training state (model, optimizer, schedule, batch order, history) written atomically
        after every epoch; when the file exists at the start, training resumes from it and
        ends exactly as an uninterrupted run would.
    roles : optional
        The spectral weights of a model other than the two FNOs
        (:func:`transfer_tune.core.adapters.model_roles`).

    Under ``torchrun`` (an initialised process group) the model is wrapped in
    DistributedDataParallel and every global batch of ``hparams.batch_size`` is split
    across the ranks; the loss curve is that of one process with the same global batch.

    Returns
    -------
    TrainResult

    Raises
    ------
    DivergenceError
        When the training or validation loss becomes NaN, infinite, or larger than
        ``divergence_threshold``.
    TransferTuneError
        On bad arguments (e.g. a batch size larger than the training set), or a model whose
        parameters are all zero (never initialised: it cannot learn).
    """
    epochs = as_int(epochs, "epochs")
    _check_physics(hparams, data)
    if hparams.batch_size > data.n_train:
        raise TransferTuneError(
            f"batch_size {hparams.batch_size} is larger than the training set "
            f"({data.n_train} samples); use batch_size <= {data.n_train} or more data"
        )
    device = resolve_device(device)
    model.to(device)
    x_train = data.x_train.to(device)
    y_train = data.y_train.to(device) if hparams.uses_labels else None
    physics = data.physics if hparams.physics else None
    x_phys = data.x_physics.to(device) if data.x_physics is not None else x_train
    pino = hparams.loss == "pino"
    data_weight = hparams.data_weight if pino else 1.0
    has_val = data.x_val is not None
    if has_val:
        x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    optimizer = make_optimizer(model, hparams, parametrization, roles)
    n = data.n_train
    steps_per_epoch = math.ceil(n / hparams.batch_size)
    factor = _schedule(hparams, steps_per_epoch, epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(seed)
    callbacks = list(callbacks)
    result = TrainResult()
    first_epoch = 0
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        state = _load_state(checkpoint, hparams, epochs, seed, n)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            result.history = [EpochRecord(**r) for r in state["history"]]
            result.steps = state["steps"]
            first_epoch = len(result.history)
    _check_not_all_zero(model)
    # under torchrun the global batch is split across ranks and DDP averages the gradients
    net = nn.parallel.DistributedDataParallel(model) if distributed.is_distributed() else model
    scale = distributed.world_size()
    start = time.perf_counter() - (result.history[-1].seconds if result.history else 0.0)
    bar = tqdm(
        range(first_epoch, epochs),
        desc=description,
        disable=not (progress and distributed.is_main()),
        leave=False,
        unit="epoch",
    )
    net.train()
    for epoch in bar:
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        residual_total = torch.zeros((), dtype=torch.float64, device=device)
        for begin in range(0, n, hparams.batch_size):
            idx = order[begin : begin + hparams.batch_size]
            local, weight = distributed.local_part(idx)
            pred = net(x_train.index_select(0, local))
            terms = []
            if y_train is not None and data_weight > 0:
                errors = relative_l2(pred, y_train.index_select(0, local), reduction="sum")
                terms.append(errors if data_weight == 1.0 else data_weight * errors)
            if physics is not None:
                xp = x_phys.index_select(0, local)
                residual = physics(xp, pred if data.x_physics is None else net(xp)).sum()
                terms.append(hparams.physics_weight * residual)
                residual_total += weight * residual.detach().double()
            objective = weight * sum(terms[1:], terms[0])
            loss = objective * (scale / idx.numel())  # DDP's mean over ranks -> global mean
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model.parameters(), hparams.clip, hparams.clip_value)
            optimizer.step()
            scheduler.step()
            total += objective.detach().double()
            result.steps += 1
        train_loss = float(distributed.all_reduce_sum(total)) / n
        physics_loss = (
            float(distributed.all_reduce_sum(residual_total)) / n if physics is not None else None
        )
        if _diverged(train_loss, divergence_threshold):
            raise DivergenceError(
                f"training loss became {train_loss} in epoch {epoch} at lr={hparams.lr:g}",
                epoch=epoch,
                step=result.steps,
            )
        val_loss = val_physics = None
        if has_val:
            val_loss, val_physics = _means(model, x_val, y_val, physics, eval_batch_size)
        if val_loss is not None and _diverged(val_loss, divergence_threshold):
            raise DivergenceError(
                f"validation loss became {val_loss} in epoch {epoch} at lr={hparams.lr:g}",
                epoch=epoch,
                step=result.steps,
            )
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            lr=hparams.lr * factor(result.steps),
            seconds=time.perf_counter() - start,
            physics_loss=physics_loss,
            val_physics_loss=val_physics,
        )
        result.history.append(record)
        if checkpoint is not None and distributed.is_main():
            checkpoint_io.save(
                checkpoint,
                {
                    "model": tensor_state(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "history": [asdict(r) for r in result.history],
                    "steps": result.steps,
                    "fingerprint": _fingerprint(hparams, epochs, seed, n),
                },
            )
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}" if has_val else "-")
        stop = False
        for callback in callbacks:
            stop = bool(callback(record)) or stop
        if stop:
            result.stopped_early = True
            break
    bar.close()
    result.seconds = time.perf_counter() - start
    return result


def _fingerprint(hparams: HParams, epochs: int, seed: int, n: int) -> dict:
    values = hparams.to_dict()
    defaults = HParams().to_dict()
    for name in ("optimizer", *_PHYSICS_FIELDS):  # states saved before they existed resume
        if values[name] == defaults[name]:
            del values[name]
    return {"hparams": values, "epochs": epochs, "seed": seed, "n_train": n}


def _load_state(path: Path, hparams: HParams, epochs: int, seed: int, n: int) -> dict | None:
    """The saved training state to resume from, or ``None`` to start afresh."""
    if not path.exists():
        return None
    try:
        state = checkpoint_io.load(path)
    except Exception as exc:  # a torn or foreign file: start again rather than trust it
        warnings.warn(f"ignoring unreadable training state {path}: {exc}", stacklevel=3)
        return None
    if state.get("fingerprint") != _fingerprint(hparams, epochs, seed, n):
        raise TransferTuneError(
            f"the training state {path} belongs to a run with other settings; "
            "delete it to start afresh or resume with the same settings"
        )
    return state
