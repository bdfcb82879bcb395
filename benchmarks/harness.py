"""What every benchmark script shares, so that each script keeps only its science.

Importing this module is the one place that puts the repository root and ``benchmarks/`` on
``sys.path``: a script run as ``python benchmarks/NAME.py`` then imports ``pdes``,
``transfer_tune`` and its sibling modules from this checkout. Every script imports it before
anything of the project's.

The flags every script takes (:func:`parser`)::

    --quick               tiny sizes, seconds (what tests/test_benchmarks.py runs)
    --json PATH           where the record goes (a full run's default: results/NAME.json)
    --readme-from JSON..  only re-render the script's README block from recorded JSON
    --no-readme           a full run leaves the README alone

and, where a script has them, ``--n-jobs N``, ``--threads N`` and ``--seeds 0,1000,...``.

The README rule (:func:`publish`): a block is rendered from JSON in ``benchmarks/results``
alone. A full run writes its record there and then rewrites its block from that file; a record
written elsewhere (``--json PATH``) never touches the README, and ``--readme-from`` renders
any record on purpose. So every block re-renders byte for byte from the JSON beside it
(``tests/test_benchmarks.py`` checks each :class:`Block`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from machine import environment, load_average  # noqa: E402
from readme_block import write_block  # noqa: E402

RESULTS = BENCH / "results"
#: ``benchmarks/README.md``: the benchmarks' own blocks.
README = BENCH / "README.md"
#: The repository's README (its "Does it work?" block).
TOP_README = ROOT / "README.md"


# -- flags ------------------------------------------------------------------------------------
def _seeds(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def common(
    *,
    readme: bool = True,
    n_jobs: int | None = None,
    threads: int | None | bool = False,
    seeds: bool = False,
) -> argparse.ArgumentParser:
    """The parent parser of every benchmark: ``--quick`` and ``--json`` always; the README
    flags when the script has a block; ``--n-jobs``/``--threads``/``--seeds`` when asked for
    (``n_jobs``/``threads``: the default; ``threads=None``: torch's own count)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (the test suite's)")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the record here"
        + (" (a full run's default: benchmarks/results/<script>.json)" if readme else ""),
    )
    if readme:
        p.add_argument(
            "--readme-from",
            type=Path,
            nargs="+",
            default=None,
            metavar="JSON",
            help="only re-render the README block from recorded JSON (no run)",
        )
        p.add_argument(
            "--no-readme", action="store_true", help="a full run leaves the README alone"
        )
    if n_jobs is not None:
        p.add_argument(
            "--n-jobs", type=int, default=n_jobs, help=f"worker processes (default {n_jobs})"
        )
    if threads is not False:
        p.add_argument("--threads", type=int, default=threads, help="torch threads")
    if seeds:
        p.add_argument("--seeds", type=_seeds, default=None, help="comma-separated, e.g. 0,1000")
    return p


def parser(doc: str | None, **flags: Any) -> argparse.ArgumentParser:
    """A script's parser: the first line of its docstring, :func:`common`'s flags (``flags``
    choose which), and room for the script's own."""
    first = (doc or "").strip().splitlines()
    return argparse.ArgumentParser(
        description=first[0] if first else None, parents=[common(**flags)]
    )


def command(script: str, argv: Sequence[str] | None = None, prefix: str = "") -> str:
    """The command line a record names: ``[prefix]python benchmarks/SCRIPT ARGS``."""
    args = sys.argv[1:] if argv is None else list(argv)
    return f"{prefix}python benchmarks/{Path(script).name} {shlex.join(args)}".strip()


# -- the environment and the clock ------------------------------------------------------------
class Run:
    """One run's ``env`` record (printed at once, :func:`machine.environment`) and wall clock.

    ``extra`` is what the benchmark adds to the record (threads, workers, versions, ...).
    :meth:`restart` starts the clock again once the data are prepared; :meth:`stop` adds the
    load average after the run and the wall (and optionally CPU) seconds to ``env``.
    """

    def __init__(self, quick: bool, **extra: Any) -> None:
        self.env = environment(quick, **extra)
        self.start = time.perf_counter()

    def restart(self) -> None:
        """Start the wall clock now (what came before, e.g. generating data, is not timed)."""
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall seconds since the clock started."""
        return time.perf_counter() - self.start

    def stop(self, cpu: bool = False) -> dict[str, Any]:
        """Record ``load_after``, ``total_seconds`` (and ``cpu_seconds`` of this process)."""
        self.env["load_after"] = load_average()
        self.env["total_seconds"] = self.seconds
        if cpu:
            self.env["cpu_seconds"] = time.process_time()
        return self.env


# -- the JSON record --------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write: numpy scalars, tuples, paths, tensors, ..."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


def write_json(path: Path, record: dict) -> Path:
    """Write ``record`` to ``path`` atomically (a sibling temporary file, then a rename), so a
    crash or a reader never sees half a record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, default=_plain) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(path: Path | str) -> dict:
    """A recorded JSON file."""
    return json.loads(Path(path).read_text())


def shown(path: Path | str) -> str:
    """``path`` relative to the repository root when inside it (as README blocks name it)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# -- the README block -------------------------------------------------------------------------
_HEADING = re.compile(r"^### Record `([^`]+)`$", re.M)


@dataclass(frozen=True)
class Block:
    """A README block that its script renders from JSON records alone.

    ``name`` names the markers (``<!-- name:begin -->``, :mod:`readme_block`) and the default
    record ``<results>/<name>.json``; ``render`` turns one loaded record into Markdown. With
    ``headed``, the block holds one or more records, each under a ``### Record `path```
    heading (so the block says which files it is rendered from); ``section`` is the heading
    and prose written before the markers when the README has none yet.
    """

    name: str
    render: Callable[[dict], str]
    readme: Path = README
    headed: bool = False
    section: str | None = None
    results: Path = RESULTS

    @property
    def record(self) -> Path:
        """The record a full run writes and renders the block from."""
        return self.results / f"{self.name}.json"

    def text(self, paths: Sequence[Path]) -> str:
        """The block rendered from the records at ``paths``."""
        if self.headed:
            return "\n\n".join(f"### Record `{shown(p)}`\n\n{self.render(load(p))}" for p in paths)
        if len(paths) != 1:
            raise SystemExit(f"the {self.name} block is rendered from one record, got {len(paths)}")
        return self.render(load(paths[0]))

    def write(self, paths: Sequence[Path]) -> str:
        """Render the block from ``paths`` into the README; return it."""
        block = self.text(paths)
        write_block(self.name, block, self.readme, section=self.section)
        return block

    def current(self) -> str | None:
        """The block as the README has it now (``None`` without the markers)."""
        text = self.readme.read_text()
        begin, end = f"<!-- {self.name}:begin -->", f"<!-- {self.name}:end -->"
        if begin not in text or end not in text:
            return None
        return text.split(begin, 1)[1].split(end, 1)[0].removeprefix("\n").removesuffix("\n")

    def sources(self) -> list[Path]:
        """The records the README's block is rendered from: those its headings name, or the
        default record."""
        if self.headed:
            return [ROOT / p for p in _HEADING.findall(self.current() or "")]
        return [self.record]


def rerender(block: Block, paths: Sequence[Path]) -> int:
    """``--readme-from``: rewrite ``block`` from ``paths`` and print it; exit status 0."""
    print(block.write(paths))
    return 0


def publish(
    args: argparse.Namespace, record: dict, block: Block | None = None, path: Path | None = None
) -> Path | None:
    """Write the run's record and, for a full run into ``results/``, its README block.

    The record goes to ``path`` when given, else ``--json``, else (full runs of a script with
    a block) ``block.record``; a quick run without ``--json`` writes nothing. The block is
    rewritten from the file just written, only when that file is ``block.record`` and neither
    ``--quick`` nor ``--no-readme`` was given.
    """
    if path is None and args.json is not None:
        path = args.json
    elif path is None and not args.quick and block is not None:
        path = block.record
    if path is None:
        return None
    write_json(path, record)
    print(f"wrote {shown(path)}")
    if block is None or args.quick or getattr(args, "no_readme", False):
        return path
    if Path(path).resolve() == block.record.resolve():
        block.write([path])
        print(f"rewrote the {block.name} block of {shown(block.readme)}")
    else:
        print(
            f"left the README alone: its {block.name} block is rendered from "
            f"{shown(block.record)} (--readme-from {shown(path)} renders this record)"
        )
    return path


# -- a pre-registered design -----------------------------------------------------------------
class Registered:
    """Mixin of a benchmark's frozen design dataclass (everything that decides a result)."""

    def run_id(self) -> str:
        """A short hash of the design: a changed design is a new run."""
        import dataclasses
        import hashlib

        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- a seed-parallel audit --------------------------------------------------------------------
def generate_splits(*problems: Any) -> None:
    """Generate (or read from the cache) every split of ``problems`` now, before workers and
    clocks start."""
    for problem in problems:
        for split in ("train", "val", "test"):
            problem.dataset(split)


def run_audit(
    args: argparse.Namespace,
    design: Any,
    run_seed: Callable[..., dict],
    summarise: Callable[[dict], dict],
    render: Callable[[dict], str],
    block: Block,
    prepare: Callable[[], None],
    folder_prefix: str | None = None,
) -> int:
    """The body of a pre-registered audit's ``main`` once its flags are read.

    ``prepare()`` generates the data (after the environment is printed, before the clock
    restarts); then ``run_seed(design, seed)`` runs for every seed of ``design`` in
    ``args.n_jobs`` worker processes (with ``folder_prefix``, each also gets a temporary
    folder for its storages: ``run_seed(design, seed, folder)``). The record (``run_id``,
    ``design``, ``env``, ``seeds`` and ``summarise``'s ``summary``) is printed through
    ``render`` and published as :func:`publish` says. Returns the exit status.
    """
    import contextlib
    import dataclasses
    import tempfile

    from joblib import Parallel, delayed

    clock = Run(args.quick, n_jobs=args.n_jobs, threads=1)
    prepare()
    clock.restart()
    folder = (
        tempfile.TemporaryDirectory(prefix=folder_prefix)
        if folder_prefix
        else contextlib.nullcontext(None)
    )
    with folder as path:
        extra = () if path is None else (path,)
        seeds = Parallel(n_jobs=args.n_jobs, verbose=0)(
            delayed(run_seed)(design, seed, *extra) for seed in design.seeds
        )
    record: dict[str, Any] = {
        "run_id": design.run_id(),
        "design": dataclasses.asdict(design),
        "env": clock.stop(),
        "seeds": seeds,
    }
    record["summary"] = summarise(record)
    print(render(record))
    publish(args, record, block)
    return 0
