"""Training-step speed of our FNO against neuraloperator's FNO at matched size.

Usage::

    python benchmarks/speed.py              # full: 1-D K 16/64 (1024 pts, batch 20, width 64),
                                            #       2-D K 12/24 (64 x 64, batch 10, width 32)
    python benchmarks/speed.py --quick      # tiny sizes, a few seconds
    python benchmarks/speed.py --profile    # also torch.profiler's top operators of each side
    python benchmarks/speed.py --json out.json

One *step* is forward + relative-L2 loss + backward + ``torch.optim.Adam`` step. The two
models are built to be the same network:

* ours: ``FNO(dim, modes=K, width=m, n_layers=4, projection_width=128)`` — lifting P
  (pointwise, bias), 4 x [spectral R (complex weight, no bias) + pointwise W (bias), GELU but
  not after the last], projection 128 -> GELU -> 1, grid coordinates as extra input channels;
* neuraloperator 2.0: ``FNO(n_modes, hidden_channels=m, n_layers=4, lifting_channel_ratio=0,
  projection_channel_ratio=128/m, use_channel_mlp=False, fno_skip="linear")`` — linear lifting
  (bias), 4 x [SpectralConv (complex weight + bias) + linear skip (no bias), GELU but not after
  the last], projection 128 -> GELU -> 1, grid embedding.

Kept modes match: our K keeps K frequencies on the last axis and 2K - 1 on every other;
neuraloperator's ``n_modes=M`` keeps ``M // 2 + 1`` on the last axis and ``M`` on the others,
so ``n_modes = (2K - 1, ..., 2K - 1, 2K - 2)``. The bias of each Fourier layer sits in W for
us and in the spectral conv for neuraloperator, so the parameter counts are equal (printed).

The A/B repetitions are interleaved (ours, theirs, matmul reference; the order rotates every
round), so load from other processes hits all sides alike; the table gives medians. The
reference is a dense float32 ``n x n`` matmul with ``2 n^3`` close to our step's FLOP estimate
(:func:`transfer_tune.core.flops.train_step_flops`), timed in the same rounds and rescaled to
exactly that count: "% of matmul rate" is the matmul's time over our step time.

Without neuraloperator installed (``pip install -e ".[bench]"``) the neuraloperator column
is skipped with a printed note. Full mode exits 1 if a target is missed (ours >= 1.0x
neuraloperator everywhere, > 1.0x on the 2-D cases).
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import harness
import torch
from torch import nn

from transfer_tune.core.flops import train_step_flops
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import relative_l2

N_LAYERS = 4
PROJECTION = 128


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    name: str
    dim: int
    width: int
    modes: int
    points: int
    batch: int

    @property
    def grid(self) -> tuple[int, ...]:
        """Points per axis."""
        return (self.points,) * self.dim


FULL_CASES = [
    Case("1-D K=16", 1, 64, 16, 1024, 20),
    Case("1-D K=64", 1, 64, 64, 1024, 20),
    Case("2-D K=12", 2, 32, 12, 64, 10),
    Case("2-D K=24", 2, 32, 24, 64, 10),
]
QUICK_CASES = [
    Case("1-D K=8", 1, 16, 8, 128, 4),
    Case("2-D K=6", 2, 8, 6, 24, 2),
]


def count_parameters(model: nn.Module) -> int:
    """Number of real parameters (a complex entry counts twice)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def our_config(case: Case) -> dict:
    """Constructor arguments of our FNO for ``case``."""
    return {
        "dim": case.dim,
        "modes": case.modes,
        "width": case.width,
        "n_layers": N_LAYERS,
        "in_channels": 1,
        "out_channels": 1,
        "projection_width": PROJECTION,
        "grid_features": True,
    }


def build_ours(case: Case) -> FNO:
    """Our FNO, initialised under SP."""
    model = FNO(**our_config(case))
    get_parametrization("sp", base_modes=case.modes).initialize(
        model, generator=torch.Generator().manual_seed(0)
    )
    return model


def neuralop_modes(case: Case) -> tuple[int, ...]:
    """neuraloperator's ``n_modes`` keeping the same frequencies as our K."""
    return (2 * case.modes - 1,) * (case.dim - 1) + (2 * case.modes - 2,)


def build_theirs(case: Case) -> nn.Module | None:
    """neuraloperator's FNO matched to ``case``, or ``None`` when it is not installed."""
    try:
        from neuralop.models import FNO as NeuralopFNO
    except ImportError:
        return None
    torch.manual_seed(0)
    return NeuralopFNO(
        n_modes=neuralop_modes(case),
        in_channels=1,
        out_channels=1,
        hidden_channels=case.width,
        n_layers=N_LAYERS,
        lifting_channel_ratio=0,
        projection_channel_ratio=PROJECTION / case.width,
        use_channel_mlp=False,
        fno_skip="linear",
        positional_embedding="grid",
    )


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step: forward, relative L2, backward, Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = relative_l2(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def make_matmul(flops: float) -> tuple[Callable[[], None], float]:
    """A square float32 matmul with about ``flops`` FLOPs; returns it and its exact FLOPs."""
    n = max(8, round((flops / 2.0) ** (1.0 / 3.0)))
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)

    def run() -> None:
        torch.mm(a, b, out=out)

    return run, 2.0 * n**3


def interleaved(
    fns: dict[str, Callable[[], None]], reps: int, warmup: int
) -> dict[str, list[float]]:
    """Run every function once per round, rotating the order; seconds per call."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """Forward + backward of one module on ``x`` (input gradient included, as in a network)."""
    x = x.detach().requires_grad_(True)
    with torch.no_grad():
        grad = torch.randn_like(module(x))

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(grad)

    return run


def _adam_only(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    relative_l2(model(x), y).backward()
    return optimizer.step


def parts(
    case: Case,
    ours: nn.Module,
    theirs: nn.Module | None,
    x: torch.Tensor,
    reps: int,
    warmup: int,
) -> dict[str, dict[str, float]]:
    """Median ms of the parts of a step: spectral convs, pointwise W / skips, Adam (x layers).

    Each part is timed forward + backward on a ``(batch, width, *grid)`` input, for one layer,
    and multiplied by the number of layers; what remains of the step is lifting, projection,
    GELUs, additions and the loss.
    """
    hidden = torch.randn(case.batch, case.width, *case.grid, generator=torch.Generator())
    fns: dict[str, Callable[[], None]] = {
        "ours spectral": _fwd_bwd(ours.layers[0].spectral, hidden),
        "ours pointwise": _fwd_bwd(ours.layers[0].pointwise, hidden),
        "ours adam": _adam_only(ours, x, torch.randn_like(x)),
    }
    if theirs is not None:
        fns["theirs spectral"] = _fwd_bwd(theirs.fno_blocks.convs[0], hidden)
        fns["theirs pointwise"] = _fwd_bwd(theirs.fno_blocks.fno_skips[0], hidden)
        fns["theirs adam"] = _adam_only(theirs, x, torch.randn_like(x))
    times = interleaved(fns, reps, warmup)
    out: dict[str, dict[str, float]] = {}
    for name, values in times.items():
        side, part = name.split(" ")
        scale = 1 if part == "adam" else N_LAYERS
        out.setdefault(side, {})[part] = 1e3 * scale * statistics.median(values)
    return out


def profile_top(model: nn.Module, step: Callable[[], None], rows: int = 12) -> str:
    """torch.profiler's table of the operators with the most self CPU time over 3 steps."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def run_case(case: Case, reps: int, warmup: int, profile: bool) -> dict:
    """Measure one case; returns its record."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(case.batch, 1, *case.grid, generator=gen)
    y = torch.randn(case.batch, 1, *case.grid, generator=gen)
    ours = build_ours(case)
    theirs = build_theirs(case)
    flops = train_step_flops(our_config(case), case.grid, case.batch)
    matmul, matmul_flops = make_matmul(flops)
    fns = {"ours": make_step(ours, x, y), "matmul": matmul}
    if theirs is not None:
        if tuple(theirs(x).shape) != tuple(ours(x).shape):
            raise RuntimeError("the two models disagree on the output shape")
        fns["theirs"] = make_step(theirs, x, y)
    times = interleaved(fns, reps, warmup)
    med = {name: statistics.median(values) for name, values in times.items()}
    ours_ms = 1e3 * med["ours"]
    matmul_ms = 1e3 * med["matmul"] * flops / matmul_flops
    record = {
        "case": case.name,
        "dim": case.dim,
        "width": case.width,
        "modes": case.modes,
        "grid": list(case.grid),
        "batch": case.batch,
        "neuralop_n_modes": list(neuralop_modes(case)),
        "params_ours": count_parameters(ours),
        "params_theirs": count_parameters(theirs) if theirs is not None else None,
        "step_gflop": flops / 1e9,
        "ours_ms": ours_ms,
        "ours_ms_iqr": _iqr_ms(times["ours"]),
        "theirs_ms": 1e3 * med["theirs"] if theirs is not None else None,
        "theirs_ms_iqr": _iqr_ms(times["theirs"]) if theirs is not None else None,
        "speedup": med["theirs"] / med["ours"] if theirs is not None else None,
        "matmul_ms": matmul_ms,
        "matmul_fraction": matmul_ms / ours_ms,
        "ours_gflops": flops / 1e9 / (ours_ms / 1e3),
        "reps": reps,
    }
    if theirs is not None and record["params_ours"] != record["params_theirs"]:
        raise RuntimeError(
            f"{case.name}: parameter counts differ ({record['params_ours']} vs "
            f"{record['params_theirs']})"
        )
    record["parts"] = parts(case, ours, theirs, x, max(3, reps // 2), 1)
    record["parts"]["ours"]["rest"] = ours_ms - sum(record["parts"]["ours"].values())
    if theirs is not None:
        theirs_ms = record["theirs_ms"]
        record["parts"]["theirs"]["rest"] = theirs_ms - sum(record["parts"]["theirs"].values())
    if profile:
        print(f"\n--- profile, ours, {case.name} ---\n{profile_top(ours, fns['ours'])}")
        if theirs is not None:
            print(f"--- profile, neuraloperator, {case.name} ---")
            print(profile_top(theirs, fns["theirs"]))
    return record


def _iqr_ms(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return 1e3 * (q[2] - q[0])


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def print_tables(records: list[dict]) -> None:
    """The step table and the parts table, in Markdown."""
    print(
        "\n| case | params ours | params neuralop | ours ms (IQR) | neuralop ms (IQR) | "
        "speed-up | step GFLOP | matmul-equiv ms | % of matmul rate |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in records:
        print(
            f"| {r['case']} | {r['params_ours']} | {_num(r['params_theirs'], 'd')} | "
            f"{r['ours_ms']:.1f} ({r['ours_ms_iqr']:.1f}) | {_num(r['theirs_ms'], '.1f')} "
            f"({_num(r['theirs_ms_iqr'], '.1f')}) | {_num(r['speedup'], '.2f')} | "
            f"{r['step_gflop']:.3f} | {r['matmul_ms']:.2f} | {100 * r['matmul_fraction']:.1f} |"
        )
    print(
        "\n| case | side | spectral R x4 ms | pointwise W x4 ms | Adam ms | rest ms "
        "(lifting, projection, GELU, adds, loss) |"
    )
    print("|---|---|---|---|---|---|")
    for r in records:
        for side, label in (("ours", "ours"), ("theirs", "neuralop")):
            p = r["parts"].get(side)
            if p is None:
                continue
            print(
                f"| {r['case']} | {label} | {p['spectral']:.1f} | {p['pointwise']:.1f} | "
                f"{p['adam']:.1f} | {p['rest']:.1f} |"
            )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__, readme=False, threads=None)
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds per case")
    parser.add_argument("--profile", action="store_true", help="print profiler tables")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = QUICK_CASES if args.quick else FULL_CASES
    reps = args.reps or (5 if args.quick else 25)
    warmup = 1 if args.quick else 3
    try:
        import neuralop

        neuralop_version = neuralop.__version__
    except ImportError:
        neuralop_version = None
        print(
            "note: neuraloperator is not installed; its side is skipped "
            '(pip install -e ".[bench]" installs neuraloperator==2.0.0)',
            flush=True,
        )
    clock = harness.Run(
        args.quick,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        neuralop=neuralop_version,
        python=platform.python_version(),
    )
    records = []
    for case in cases:
        start = time.perf_counter()
        records.append(run_case(case, reps, warmup, args.profile))
        r = records[-1]
        print(
            f"{case.name}: ours {r['ours_ms']:.1f} ms, neuralop {_num(r['theirs_ms'], '.1f')} ms,"
            f" speed-up {_num(r['speedup'], '.2f')} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    env = clock.stop()
    print_tables(records)
    print(f"\nload average before/after: {env['load_before']} -> {env['load_after']}")
    harness.publish(args, {"env": env, "records": records})
    if args.quick or neuralop_version is None:
        return 0
    missed = [
        r["case"]
        for r in records
        if r["speedup"] < 1.0 or (r["dim"] == 2 and not r["speedup"] > 1.0)
    ]
    print(
        "targets (>= 1.0x everywhere, > 1.0x on 2-D):", "missed " + str(missed) if missed else "met"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
