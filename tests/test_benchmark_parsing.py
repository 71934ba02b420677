"""The benchmark's parts without running anything: the output parser on real
recorded outputs (``recorded_outputs``), device specs and the binary's
lookup, and the adb / ssh command lists with their quoting."""

import shlex
import subprocess

import pytest

from bnnzoo.export import benchmark as bm
from bnnzoo.export import benchmark_commands as commands
from bnnzoo.export import benchmark_devices as devices
from bnnzoo.export.benchmark_devices import BenchmarkError, Device
from bnnzoo.export.benchmark_report import BenchmarkReport, parse_benchmark_output

from recorded_outputs import (QUICKNET_COUNT_LINE, QUICKNET_SUMMARY, RECORDED,
                              last_summary_line, recorded)

# ------------------------------------------------------------------- parser


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_parser_reads_the_timed_runs_of_real_outputs(name):
    report = parse_benchmark_output(recorded(name))
    assert {key: getattr(report, key) for key in RECORDED[name]} == RECORDED[name]
    assert report.tool == "lce_benchmark_model" and report.device == ""
    # benchmark_model prints its doubles with six significant digits: the line comes back exactly
    assert last_summary_line(recorded(name)).endswith(report.summary_line())


def test_parser_on_the_quicknet_raspberry_pi_run():
    report = parse_benchmark_output(f"{QUICKNET_COUNT_LINE}\n\n{QUICKNET_SUMMARY}\n")
    assert report.summary_line() == QUICKNET_SUMMARY
    assert (report.init_us, report.first_us, report.warmup_avg_us, report.avg_us) == (
        1471,
        41707,
        32491.4,
        31420.6,
    )
    assert (report.count, report.min_us, report.max_us, report.std_us) == (50, 31138, 31929, 260)


def test_summary_line_formats_numbers_like_benchmark_model():
    report = BenchmarkReport(
        model="quicknet.tflite",
        device="ssh:pi@raspberrypi",
        tool="lce_benchmark_model",
        num_threads=1,
        num_runs=50,
        warmup_runs=1,
        init_us=1471,
        first_us=41707,
        warmup_avg_us=32491.4,
        avg_us=31420.6,
        min_us=31138,
        max_us=31929,
        std_us=260,
        count=50,
    )
    assert report.summary_line() == QUICKNET_SUMMARY
    big = BenchmarkReport(**{**report.as_dict(), "warmup_avg_us": 3512391.0, "avg_us": 899641.0})
    assert big.summary_line().endswith("Warmup (avg): 3.51239e+06, Inference (avg): 899641")
    assert report.as_dict()["device"] == "ssh:pi@raspberrypi" and report.as_dict()["std_us"] == 260


def test_parser_takes_the_last_run_of_a_concatenated_log():
    both = recorded("benchmark_model_am62x_ssd_mobilenet_v2.txt") + recorded(
        "benchmark_model_x86_mobilenet_v1_float_4t.log"
    )
    report = parse_benchmark_output(both)
    expected = RECORDED["benchmark_model_x86_mobilenet_v1_float_4t.log"]
    assert {key: getattr(report, key) for key in expected} == expected


def test_parser_reads_crlf_output_and_fields_override():
    text = recorded("benchmark_model_qemu_riscv64_mobilenet_v1.txt").replace("\n", "\r\n")
    report = parse_benchmark_output(
        text, model="quicknet.tflite", device="adb:emulator-5554", num_runs=50, warmup_runs=1
    )
    assert (report.model, report.device, report.num_runs, report.warmup_runs) == (
        "quicknet.tflite",
        "adb:emulator-5554",
        50,
        1,
    )
    assert report.avg_us == 2.95034e06 and report.count == 50
    with pytest.raises(TypeError):
        parse_benchmark_output(text, colour="red")


def test_parser_reads_a_single_timed_run():
    text = recorded("benchmark_model_qemu_riscv64_mobilenet_v1.txt")
    timed = "count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798"
    report = parse_benchmark_output(text.replace(timed, "count=1 curr=2913402"))
    assert (report.count, report.min_us, report.max_us, report.std_us) == (1, 2913402, 2913402, 0)
    assert report.avg_us == 2.95034e06  # averages come from the summary line


def test_truncated_or_garbage_output_is_a_clear_error():
    text = recorded("benchmark_model_x86_mobilenet_v1_float_4t.log")
    cut = text[: text.index("Inference timings in us:")]  # the run died before its summary
    with pytest.raises(BenchmarkError, match=r"no 'Inference timings in us:' line.*count=114 first=8633"):
        parse_benchmark_output(cut)
    with pytest.raises(BenchmarkError, match="Segmentation fault"):
        parse_benchmark_output("STARTING!\nLoaded model /data/local/tmp/m.tflite\nSegmentation fault\n")
    with pytest.raises(BenchmarkError, match=r"\(no output\)"):
        parse_benchmark_output("")
    with pytest.raises(BenchmarkError, match="no 'count=... avg=...' line"):
        parse_benchmark_output(QUICKNET_SUMMARY)
    with pytest.raises(BenchmarkError, match="lacks first, min, max"):
        parse_benchmark_output(f"count=50 curr=31278 avg=31420.6 std=260\n{QUICKNET_SUMMARY}")
    with pytest.raises(BenchmarkError, match="not a number"):
        parse_benchmark_output(QUICKNET_COUNT_LINE + "\n" + QUICKNET_SUMMARY.replace("1471", "n/a"))
    long_garbage = "x" * 5000
    with pytest.raises(BenchmarkError) as error:
        parse_benchmark_output(long_garbage)
    assert len(str(error.value)) < 500


# ------------------------------------------------------- devices and binary


@pytest.mark.parametrize(
    "spec, device, text",
    [
        ("host", Device("host"), "host"),
        ("adb", Device("adb"), "adb"),
        ("adb:emulator-5554", Device("adb", serial="emulator-5554"), "adb:emulator-5554"),
        ("adb:192.168.1.20:5555", Device("adb", serial="192.168.1.20:5555"), "adb:192.168.1.20:5555"),
        ("ssh:raspberrypi", Device("ssh", host="raspberrypi"), "ssh:raspberrypi"),
        (
            "ssh:pi@raspberrypi.local",
            Device("ssh", user="pi", host="raspberrypi.local"),
            "ssh:pi@raspberrypi.local",
        ),
        (
            "ssh:pi@192.168.1.7:2222",
            Device("ssh", user="pi", host="192.168.1.7", port=2222),
            "ssh:pi@192.168.1.7:2222",
        ),
        ("ssh:pi@[fe80::1]:22", Device("ssh", user="pi", host="fe80::1", port=22), "ssh:pi@[fe80::1]:22"),
    ],
)
def test_parse_device(spec, device, text):
    assert devices.parse_device(spec) == device
    assert str(device) == text


@pytest.mark.parametrize(
    "spec",
    [
        "ssh:",
        "ssh:-oProxyCommand=x",
        "adb:-s",
        "ssh:host:99999",
        "phone",
        "ssh:host:0",
        "ssh:pi@",
        "ssh:@host",
        "ssh:-l@host",
        "ssh:pi@-host",
        "ssh:a;reboot",
        "ssh:$(reboot)",
        "adb:",
        "adb:a b",
        "Host",
        "ssh:host:",
        "",
    ],
)
def test_bad_device_specs_are_refused(spec):
    with pytest.raises(BenchmarkError, match=r"'adb:SERIAL'.*'ssh:USER@HOST:PORT'"):
        devices.parse_device(spec)


@pytest.fixture
def no_binary_anywhere(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("LCE_BENCHMARK_MODEL", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_binary_says_where_to_get_it(no_binary_anywhere, tmp_path):
    with pytest.raises(BenchmarkError) as error:
        devices.find_binary()
    message = str(error.value)
    for needed in (
        "https://github.com/larq/compute-engine/releases",
        "lce_benchmark_model_aarch64",
        "lce_benchmark_model_aarch32",
        "lce_benchmark_model_android_arm64",
        "--binary",
        "LCE_BENCHMARK_MODEL",
        "PATH",
    ):
        assert needed in message
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(BenchmarkError, match="releases"):  # before any adb is looked for
        bm.benchmark(model, device="adb")
    with pytest.raises(BenchmarkError, match="is not a file"):
        devices.find_binary(tmp_path / "nowhere")


def test_binary_from_argument_environment_then_path(no_binary_anywhere, tmp_path, monkeypatch):
    given, from_env, on_path = (
        tmp_path / "given",
        tmp_path / "from-env",
        no_binary_anywhere / "lce_benchmark_model",
    )
    for path in (given, from_env, on_path):
        path.write_bytes(b"\x7fELF")
    on_path.chmod(0o755)
    assert devices.find_binary() == on_path
    monkeypatch.setenv("LCE_BENCHMARK_MODEL", str(from_env))
    assert devices.find_binary() == from_env
    assert devices.find_binary(given) == given
    monkeypatch.setenv("LCE_BENCHMARK_MODEL", str(tmp_path / "gone"))
    with pytest.raises(BenchmarkError, match="LCE_BENCHMARK_MODEL"):
        devices.find_binary()


def test_missing_model_and_bad_counts(tmp_path):
    for device in ("host", "ssh:pi@raspberrypi", "adb"):
        with pytest.raises(BenchmarkError, match="does not exist"):
            bm.benchmark(tmp_path / "missing.tflite", device=device)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(BenchmarkError, match="num_runs must be"):
        bm.benchmark(model, num_runs=0)
    with pytest.raises(BenchmarkError, match="Bad ssh option"):
        commands.ssh_base(Device("ssh", host="pi"), ["-oProxyCommand=x"])


# ------------------------------------------------------- command construction



def test_adb_command_lists(tmp_path):
    binary, model = tmp_path / "lce_benchmark_model_android_arm64", tmp_path / "m.tflite"
    remote = "/data/local/tmp/bnnzoo-benchmark-0a1b"
    steps = commands.adb_commands(
        Device("adb", serial="emulator-5554"),
        binary,
        model,
        remote,
        num_threads=4,
        num_runs=50,
        warmup_runs=1,
    )
    adb = ["adb", "-s", "emulator-5554"]
    assert steps.upload_binary.argv == adb + ["push", str(binary), f"{remote}/lce_benchmark_model"]
    assert steps.upload_model.argv == adb + ["push", str(model), f"{remote}/model.tflite"]
    assert steps.run.argv == adb + [
        "shell",
        f"chmod 755 {remote}/lce_benchmark_model && "
        f"{remote}/lce_benchmark_model --graph={remote}/model.tflite"
        " --num_threads=4 --num_runs=50 --warmup_runs=1 2>&1",
    ]
    assert steps.cleanup.argv == adb + ["shell", f"rm -rf {remote}"]
    plain = commands.adb_commands(Device("adb"), binary, model, remote, num_threads=1, num_runs=5, warmup_runs=2)
    assert plain.upload_binary.argv[:2] == ["adb", "push"] and "-s" not in plain.run.argv


def test_remote_strings_are_quoted():
    remote = "/tmp/it's here; $(reboot)"
    command = commands.benchmark_command(
        f"{remote}/lce_benchmark_model", f"{remote}/model.tflite", num_threads=2, num_runs=3, warmup_runs=1
    )
    assert shlex.split(command) == [
        f"{remote}/lce_benchmark_model",
        f"--graph={remote}/model.tflite",
        "--num_threads=2",
        "--num_runs=3",
        "--warmup_runs=1",
        "2>&1",
    ]
    out = subprocess.run(
        ["sh", "-c", command.replace(f"{shlex.quote(remote + '/lce_benchmark_model')}", "printf '[%s]'", 1)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == f"[--graph={remote}/model.tflite][--num_threads=2][--num_runs=3][--warmup_runs=1]"


def test_ssh_command_lists(tmp_path):
    device = Device("ssh", user="pi", host="raspberrypi", port=2222)
    steps = commands.ssh_commands(
        device,
        tmp_path / "b",
        tmp_path / "m.tflite",
        "/tmp/bnnzoo-benchmark.x1",
        num_threads=4,
        num_runs=50,
        warmup_runs=1,
        ssh_options=["IdentityFile=/k"],
    )
    ssh = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentityFile=/k",
        "-o",
        "ConnectTimeout=10",
        "-p",
        "2222",
        "--",
        "pi@raspberrypi",
    ]
    assert steps.upload_binary == commands.Step(
        ssh
        + [
            "cat > /tmp/bnnzoo-benchmark.x1/lce_benchmark_model"
            " && chmod 755 /tmp/bnnzoo-benchmark.x1/lce_benchmark_model"
        ],
        "copy lce_benchmark_model to",
        tmp_path / "b",
    )
    assert steps.upload_model.argv == ssh + ["cat > /tmp/bnnzoo-benchmark.x1/model.tflite"]
    assert steps.upload_model.stdin == tmp_path / "m.tflite"
    assert steps.run.argv[-1].startswith(
        "/tmp/bnnzoo-benchmark.x1/lce_benchmark_model --graph=/tmp/bnnzoo-benchmark.x1/model.tflite"
    )
    assert steps.cleanup.argv == ssh + ["rm -rf -- /tmp/bnnzoo-benchmark.x1"]
    no_port = commands.ssh_base(Device("ssh", host="pi"))
    assert "-p" not in no_port and no_port[-2:] == ["--", "pi"]
