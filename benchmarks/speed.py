"""Training-step speed of our FNO against neuraloperator's FNO at matched size.

Usage::

    python benchmarks/speed.py              # full: 1-D K 16/64 (1024 pts, batch 20, width 64),
                                            #       2-D K 12/24 (64 x 64, batch 10, width 32)
    python benchmarks/speed.py --quick      # tiny sizes, a few seconds
    python benchmarks/speed.py --profile    # also torch.profiler's top operators of each side
    python benchmarks/speed.py --json out.json   # a record elsewhere; the README untouched
    python benchmarks/speed.py --readme-from benchmarks/results/speed.json

A full run writes ``results/speed.json`` and renders the ``speed`` block of
``benchmarks/README.md`` from it (:func:`render`: both tables, the target and the sentences
with numbers); it needs a quiet machine.

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


def step_table(records: list[dict]) -> str:
    """The step table, in Markdown."""
    lines = [
        "| case | params ours | params neuralop | ours ms (IQR) | neuralop ms (IQR) | "
        "speed-up | step GFLOP | matmul-equiv ms | % of matmul rate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        speedup = "n/a" if r["speedup"] is None else f"**{r['speedup']:.2f}**"
        lines.append(
            f"| {r['case']} | {r['params_ours']} | {_num(r['params_theirs'], 'd')} | "
            f"{r['ours_ms']:.1f} ({r['ours_ms_iqr']:.1f}) | {_num(r['theirs_ms'], '.1f')} "
            f"({_num(r['theirs_ms_iqr'], '.1f')}) | {speedup} | "
            f"{r['step_gflop']:.3f} | {r['matmul_ms']:.2f} | {100 * r['matmul_fraction']:.1f} |"
        )
    return "\n".join(lines)


SIDES = (("ours", "ours"), ("theirs", "neuralop"))


def parts_table(records: list[dict]) -> str:
    """The table of where the time goes, in Markdown."""
    lines = [
        "| case | side | spectral R x4 ms | pointwise W x4 ms | Adam ms | rest ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        for side, label in SIDES:
            p = r["parts"].get(side)
            if p is not None:
                lines.append(
                    f"| {r['case']} | {label} | {p['spectral']:.1f} | {p['pointwise']:.1f} | "
                    f"{p['adam']:.1f} | {p['rest']:.1f} |"
                )
    return "\n".join(lines)


def _span(values: list[float], fmt: str) -> str:
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}–{high}"


def _setups(records: list[dict]) -> str:
    """The cases' sizes by dimension, e.g. "1-D K = 16, 64 (width 64, 1024 points, batch 20)"."""
    out = []
    for dim in sorted({r["dim"] for r in records}):
        rs = [r for r in records if r["dim"] == dim]
        sizes = sorted({(r["width"], " × ".join(map(str, r["grid"])), r["batch"]) for r in rs})
        text = "; ".join(f"width {w}, {g} points, batch {b}" for w, g, b in sizes)
        out.append(f"{dim}-D K = {', '.join(str(r['modes']) for r in rs)} ({text})")
    return "; ".join(out)


def _target(record: dict) -> str:
    """The target sentence: met or missed, and the range of speed-ups."""
    records = record["records"]
    if any(r["speedup"] is None for r in records):
        return "Target: not measured (neuraloperator was not installed)."
    missed = [
        r["case"]
        for r in records
        if r["speedup"] < 1.0 or (r["dim"] == 2 and not r["speedup"] > 1.0)
    ]
    if record["env"]["mode"] != "full":
        verdict = "applies to full runs only"
    else:
        verdict = "**met**" if not missed else f"**missed** ({', '.join(missed)})"
    span = _span([r["speedup"] for r in records], ".2f")
    return f"Target (≥ 1.0x everywhere, > 1.0x on 2-D): {verdict}; speed-ups {span}x."


def _shares(records: list[dict]) -> str:
    """Sentences on the spectral layers' share of the step and the contraction's size."""
    out = []
    for side, _label in SIDES:
        rs = [r for r in records if r["parts"].get(side) is not None]
        if not rs:
            continue
        step = {"ours": "ours_ms", "theirs": "theirs_ms"}[side]
        shares = [r["parts"][side]["spectral"] / r[step] for r in rs]
        top = max(zip(shares, rs, strict=True), key=lambda sr: sr[0])[1]
        largest = sum(r["parts"][side]["spectral"] == max(r["parts"][side].values()) for r in rs)
        who = "Our" if side == "ours" else "Neuraloperator's"
        out.append(
            f"{who} spectral layers take {_span([100 * s for s in shares], '.0f')} % of the "
            f"step (the most at {top['case']}) and are its largest part in {largest} of "
            f"{len(rs)} cases."
        )
    big = max(records, key=lambda r: (2 * r["modes"] - 1) ** (r["dim"] - 1) * r["modes"])
    kept = [2 * big["modes"] - 1] * (big["dim"] - 1) + [big["modes"]]
    count = (2 * big["modes"] - 1) ** (big["dim"] - 1) * big["modes"]
    shape = f"({big['batch']} × {big['width']}) @ ({big['width']} × {big['width']})"
    modes = " × ".join(map(str, kept)) + (f" = {count}" if len(kept) > 1 else "")
    out.append(
        f"At {big['case']} our mode contraction is {modes} complex matmuls of {shape} per "
        "call, three calls per layer (the forward and the two products of the backward)."
    )
    rates = [r["step_gflop"] / (r["matmul_ms"] / 1e3) for r in records]
    out.append(
        f"The dense matmul reference runs at {_span(rates, '.0f')} GFLOP/s on these cores; our "
        f"step reaches {_span([100 * r['matmul_fraction'] for r in records], '.0f')} % of that "
        "rate."
    )
    return " ".join(out)


def render(record: dict) -> str:
    """The README block: the step table, the target, where the time goes (JSON alone)."""
    env, records = record["env"], record["records"]
    neuralop = f"neuraloperator {env['neuralop']}" if env.get("neuralop") else "no neuraloperator"
    reps = _span([r["reps"] for r in records], "d")
    return "\n".join(
        [
            f"Generated by `benchmarks/speed.py` from `results/speed.json` ({env['mode']} run: "
            f"{env['nproc']} cores, {env['cpu']}, torch {env['torch']} on {env['threads']} "
            f"threads, {neuralop}, Python {env['python']}; load average "
            f"{env['load_before']} → {env['load_after']}); do not edit by hand. Cases: "
            f"{_setups(records)}; {reps} interleaved rounds each.",
            "",
            step_table(records),
            "",
            _target(record),
            "",
            "Where the time goes (each part timed forward + backward on a (batch, width, grid) "
            f'input in interleaved rounds, times the {N_LAYERS} layers; "rest" = step − '
            "parts: lifting, projection and its GELU, the additions, the loss):",
            "",
            parts_table(records),
            "",
            _shares(records),
        ]
    )


BLOCK = harness.Block("speed", render)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = harness.parser(__doc__, threads=None)
    parser.add_argument("--reps", type=int, default=None, help="interleaved rounds per case")
    parser.add_argument("--profile", action="store_true", help="print profiler tables")
    args = parser.parse_args(argv)
    if args.readme_from:
        return harness.rerender(BLOCK, args.readme_from)
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
    record = {"env": clock.stop(), "records": records}
    print("\n" + render(record))
    harness.publish(args, record, BLOCK)
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
