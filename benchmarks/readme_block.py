"""Each benchmark's README tables live between two markers that only its script rewrites.

``<!-- NAME:begin -->`` … ``<!-- NAME:end -->`` in ``benchmarks/README.md``: the script renders
the block from its JSON record, so the numbers in the README are never typed by hand.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of benchmark ``name``'s block."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_block(name: str, block: str, path: Path = README, section: str | None = None) -> None:
    """Replace the text between ``name``'s markers in ``path`` with ``block``.

    Without the markers: append ``section`` (a heading and its prose) followed by them when
    given, else stop with a message naming the markers.
    """
    begin, end = markers(name)
    text = path.read_text()
    if begin not in text or end not in text:
        if section is None:
            raise SystemExit(f"{path} has no {begin} ... {end} block")
        text = f"{text.rstrip(chr(10))}\n\n{section}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{block}\n{end}{tail}")
