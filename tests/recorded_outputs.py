"""Real ``lce_benchmark_model`` outputs recorded in ``tests/data/`` (sources and
licences in its README.md), and what each says, for the benchmark's tests."""

from pathlib import Path

DATA = Path(__file__).parent / "data"

# The only real lce_benchmark_model run at hand: QuickNet on a Raspberry Pi 4B,
# as recorded in shared/stack.md (section "lce_benchmark_model").
QUICKNET_COUNT_LINE = "count=50 first=31929 curr=31278 min=31138 max=31929 avg=31420.6 std=260"
QUICKNET_SUMMARY = ("Inference timings in us: Init: 1471, First inference: 41707, "
                   "Warmup (avg): 32491.4, Inference (avg): 31420.6")

# What each recorded output says, read off the files by eye: the last
# "Inference timings" line and the timed runs' "count=" line.
RECORDED = {
    "benchmark_model_x86_mobilenet_v1_float_4t.log": dict(
        model="/working_dir/tensorflow-models/iccd2020/mobilenet-v1-float/mobilenet_v1_1.0_224.tflite",
        num_threads=4,
        num_runs=50,
        warmup_runs=1,
        init_us=250,
        first_us=25428,
        warmup_avg_us=9007.27,
        avg_us=8677.03,
        min_us=8355,
        max_us=10438,
        std_us=280,
        count=114,
    ),
    "benchmark_model_qemu_riscv64_mobilenet_v1.txt": dict(
        model="./mobilenet_v1_1.0_224.tflite",
        num_threads=4,
        num_runs=None,
        warmup_runs=None,
        init_us=17187,
        first_us=3512391,
        warmup_avg_us=3.51239e06,
        avg_us=2.95034e06,
        min_us=2727568,
        max_us=3189954,
        std_us=109798,
        count=50,
    ),
    "benchmark_model_am62x_ssd_mobilenet_v2.txt": dict(
        model="/usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite",
        num_threads=None,
        num_runs=None,
        warmup_runs=None,
        init_us=5579,
        first_us=1357602,
        warmup_avg_us=1.3576e06,
        avg_us=1.24027e06,
        min_us=1238588,
        max_us=1252566,
        std_us=2565,
        count=50,
    ),
}
TIMINGS = ("init_us", "first_us", "warmup_avg_us", "avg_us", "min_us", "max_us", "std_us", "count")


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def last_summary_line(text: str) -> str:
    return [line for line in text.splitlines() if "Inference timings in us:" in line][-1]

#: A model path that breaks any command built by string pasting.
NASTY = "dir with space/m ;$(touch pwned) `touch pwned2` 'q\".tflite"
