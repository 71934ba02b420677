r"""A benchmark's timings (:class:`BenchmarkReport`) and the parser of what
``lce_benchmark_model`` printed (:func:`parse_benchmark_output`).

(Not the export report: that is :mod:`.report`.) Both benchmark tools fill one
report, timed the way TFLite's ``benchmark_model`` times a model (LCE's
``lce_benchmark_model`` is that tool with LCE's binary ops registered):

* ``Init``: load the flatbuffer and build the interpreter (tensors allocated);
* ``First inference``: the first warm-up run; ``Warmup (avg)``: the mean of the
  warm-up runs, the first one included;
* then timed runs \(t_1, \dots, t_n\) in whole microseconds, summarised as
  \[ \bar t = \frac{1}{n}\sum_i t_i, \qquad
     s = \Big\lfloor \sqrt{\tfrac{1}{n}\textstyle\sum_i t_i^2 - \bar t^{\,2}} \Big\rfloor \]
  (population standard deviation in whole microseconds) with ``min``, ``max``
  and the ``count`` of runs.
"""

import dataclasses
import math
import re
from typing import Optional

from .benchmark_devices import BINARY_NAME, BenchmarkError


def _g(value: float) -> str:
    """A double as C++ streams print it by default (six significant digits, ``%g``)."""
    return f"{value:g}"


@dataclasses.dataclass(frozen=True)
class BenchmarkReport:
    """Timings of one benchmark, in microseconds.

    ``num_threads``, ``num_runs`` and ``warmup_runs`` are what was asked for
    (``None`` when parsing an output that does not say); ``count`` is how many
    timed runs happened.
    """

    model: str
    device: str
    tool: str
    num_threads: Optional[int]
    num_runs: Optional[int]
    warmup_runs: Optional[int]
    init_us: int
    first_us: int
    warmup_avg_us: float
    avg_us: float
    min_us: int
    max_us: int
    std_us: int
    count: int

    def summary_line(self) -> str:
        """The last line ``benchmark_model`` prints, in its format."""
        return (
            f"Inference timings in us: Init: {self.init_us}, First inference: {self.first_us}, "
            f"Warmup (avg): {_g(self.warmup_avg_us)}, Inference (avg): {_g(self.avg_us)}"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_SUMMARY = re.compile(
    r"Inference timings in us: Init: (?P<init>\S+), First inference: (?P<first>\S+), "
    r"Warmup \(avg\): (?P<warmup>\S+), Inference \(avg\): (?P<avg>\S+)"
)
_TIMED_HEADER = "Running benchmark for at least"
_COUNT = re.compile(r"\bcount=\d+")
_PAIR = re.compile(r"(\w+)=(\S+)")
_PARAMS = {  # report field: the parameter lines benchmark_model prints for it
    "model": ("Graph",),
    "num_threads": ("Num threads",),
    "num_runs": ("Min num runs", "Num runs"),
    "warmup_runs": ("Min warmup runs", "Warmup runs"),
}
_OVERRIDABLE = {"model", "device", "tool", "num_threads", "num_runs", "warmup_runs"}


def output_tail(text: str, lines: int = 5, width: int = 300) -> str:
    """The last ``lines`` non-blank lines of a tool's output on one line, at most ``width`` long."""
    last = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = " | ".join(last) or "(no output)"
    return joined if len(joined) <= width else "..." + joined[-(width - 3) :]


def _number(text: str, what: str, integer: bool):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BenchmarkError(f"The benchmark output has {what}={text!r}, which is not a number.")
    return int(round(value)) if integer else value


def parse_benchmark_output(text: str, **fields) -> BenchmarkReport:
    """Parse what ``lce_benchmark_model`` (TFLite's ``benchmark_model``) printed.

    Timings come from the *last* ``Inference timings in us:`` line and from the
    last ``count=...`` line before it and after the last ``Running benchmark for
    at least N iterations`` header, i.e. the timed runs, not the warm-up ones and
    not the per-operator ``Timings (microseconds): count=`` lines of
    ``--enable_op_profiling``. Log prefixes (``INFO: ``, logcat's) are ignored.
    ``fields`` (``model``, ``device``, ``tool``, ``num_threads``, ``num_runs``,
    ``warmup_runs``) override what the output's parameter lines say.
    """
    unknown = set(fields) - _OVERRIDABLE
    if unknown:
        raise TypeError(f"parse_benchmark_output() got unexpected fields {sorted(unknown)}")
    lines = [line.rstrip("\r") for line in text.splitlines()]
    end = _last_summary(lines, text)
    summary = _SUMMARY.search(lines[end])
    stats = _timed_runs(lines, end, text)
    return BenchmarkReport(
        **{**_parameters(lines, end), **fields},
        init_us=_number(summary["init"], "Init", integer=True),
        first_us=_number(summary["first"], "First inference", integer=True),
        warmup_avg_us=_number(summary["warmup"], "Warmup (avg)", integer=False),
        avg_us=_number(summary["avg"], "Inference (avg)", integer=False),
        min_us=_number(stats["min"], "min", integer=True),
        max_us=_number(stats["max"], "max", integer=True),
        std_us=_number(stats["std"], "std", integer=True),
        count=_number(stats["count"], "count", integer=True),
    )


def _last_summary(lines, text: str) -> int:
    """The index of the last ``Inference timings in us:`` line."""
    summaries = [i for i, line in enumerate(lines) if _SUMMARY.search(line)]
    if not summaries:
        raise BenchmarkError(
            "The benchmark output has no 'Inference timings in us:' line, so the benchmark did not "
            f"finish; its last lines were: {output_tail(text)}"
        )
    return summaries[-1]


def _timed_runs(lines, end: int, text: str) -> dict:
    """The ``key=value`` statistics of the timed runs' ``count=`` line before line ``end``
    (one run, printed ``count=1 curr=T``, as the statistics of one run)."""
    headers = [i for i in range(end) if _TIMED_HEADER in lines[i]]
    start = headers[-1] if headers else 0
    counts = [i for i in range(start, end) if _COUNT.search(lines[i])]
    if not counts:
        raise BenchmarkError(
            "The benchmark output has no 'count=... avg=...' line for its timed runs before its "
            f"'Inference timings in us:' line; its last lines were: {output_tail(text)}"
        )
    line = lines[counts[-1]]
    stats = dict(_PAIR.findall(line[_COUNT.search(line).start() :]))
    count = _number(stats["count"], "count", integer=True)
    if count == 1 and "curr" in stats and "avg" not in stats:
        stats.update(first=stats["curr"], min=stats["curr"], max=stats["curr"], avg=stats["curr"], std="0")
    missing = [key for key in ("first", "min", "max", "avg", "std") if key not in stats]
    if missing:
        raise BenchmarkError(
            f"The benchmark's timed-runs line lacks {', '.join(missing)}: {line.strip()!r}; "
            "is this the output of lce_benchmark_model (TFLite benchmark_model)?"
        )
    return stats


def _parameters(lines, end: int) -> dict:
    """``model``, ``device``, ``tool`` and the asked-for counts, from the parameter
    lines of the last run (after its ``STARTING!``) before line ``end``."""
    starts = [i for i in range(end) if "STARTING!" in lines[i]]
    values = {"device": "", "tool": BINARY_NAME}
    for field, names in _PARAMS.items():
        values[field] = None
        for candidate in lines[starts[-1] if starts else 0 : end]:
            for name in names:
                found = re.search(rf"(?:^|: ){re.escape(name)}: \[(.*)\]\s*$", candidate)
                if found:
                    values[field] = (
                        found.group(1) if field == "model" else _number(found.group(1), name, True)
                    )
    values["model"] = values["model"] or ""
    return values
