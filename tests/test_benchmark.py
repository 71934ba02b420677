"""The benchmark: parser on real recorded outputs, host interpreter, devices for real.

Recorded outputs live in ``tests/data/`` (sources and licences in its
README.md). The ssh device is Debian's real ``sshd`` on 127.0.0.1 with throwaway
keys; the "device binary" is a stand-in shell script that checks its flags and
prints a recorded output. Android runs through a fake ``adb`` on ``PATH`` whose
``/data/local/tmp`` is a folder of the test.
"""

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bnnzoo.export import benchmark as bm
from bnnzoo.export.benchmark import BenchmarkError, BenchmarkReport, Device, parse_benchmark_output

DATA = Path(__file__).parent / "data"
SSHD = Path("/usr/sbin/sshd")

# The only real lce_benchmark_model run at hand: QuickNet on a Raspberry Pi 4B,
# as recorded in shared/stack.md (section "lce_benchmark_model").
QUICKNET_COUNT_LINE = "count=50 first=31929 curr=31278 min=31138 max=31929 avg=31420.6 std=260"
QUICKNET_SUMMARY = "Inference timings in us: Init: 1471, First inference: 41707, Warmup (avg): 32491.4, Inference (avg): 31420.6"

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
    assert bm.parse_device(spec) == device
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
        bm.parse_device(spec)


@pytest.fixture
def no_binary_anywhere(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("LCE_BENCHMARK_MODEL", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_binary_says_where_to_get_it(no_binary_anywhere, tmp_path):
    with pytest.raises(BenchmarkError) as error:
        bm.find_binary()
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
        bm.find_binary(tmp_path / "nowhere")


def test_binary_from_argument_environment_then_path(no_binary_anywhere, tmp_path, monkeypatch):
    given, from_env, on_path = (
        tmp_path / "given",
        tmp_path / "from-env",
        no_binary_anywhere / "lce_benchmark_model",
    )
    for path in (given, from_env, on_path):
        path.write_bytes(b"\x7fELF")
    on_path.chmod(0o755)
    assert bm.find_binary() == on_path
    monkeypatch.setenv("LCE_BENCHMARK_MODEL", str(from_env))
    assert bm.find_binary() == from_env
    assert bm.find_binary(given) == given
    monkeypatch.setenv("LCE_BENCHMARK_MODEL", str(tmp_path / "gone"))
    with pytest.raises(BenchmarkError, match="LCE_BENCHMARK_MODEL"):
        bm.find_binary()


def test_missing_model_and_bad_counts(tmp_path):
    for device in ("host", "ssh:pi@raspberrypi", "adb"):
        with pytest.raises(BenchmarkError, match="does not exist"):
            bm.benchmark(tmp_path / "missing.tflite", device=device)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(BenchmarkError, match="num_runs must be"):
        bm.benchmark(model, num_runs=0)
    with pytest.raises(BenchmarkError, match="Bad ssh option"):
        bm.ssh_base(Device("ssh", host="pi"), ["-oProxyCommand=x"])


# ------------------------------------------------------- command construction

NASTY = "dir with space/m ;$(touch pwned) `touch pwned2` 'q\".tflite"


def test_adb_command_lists(tmp_path):
    binary, model = tmp_path / "lce_benchmark_model_android_arm64", tmp_path / "m.tflite"
    remote = "/data/local/tmp/bnnzoo-benchmark-0a1b"
    steps = bm.adb_commands(
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
    plain = bm.adb_commands(Device("adb"), binary, model, remote, num_threads=1, num_runs=5, warmup_runs=2)
    assert plain.upload_binary.argv[:2] == ["adb", "push"] and "-s" not in plain.run.argv


def test_remote_strings_are_quoted():
    remote = "/tmp/it's here; $(reboot)"
    command = bm.benchmark_command(
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
    steps = bm.ssh_commands(
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
    assert steps.upload_binary == bm.Step(
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
    no_port = bm.ssh_base(Device("ssh", host="pi"))
    assert "-p" not in no_port and no_port[-2:] == ["--", "pi"]


# ------------------------------------------------------------------- host


@pytest.fixture(scope="module")
def tiny_flatbuffer(tmp_path_factory):
    """A real LCE flatbuffer: binary conv, batch norm, pooling, dense."""
    import larq as lq
    from bnnzoo.export import export_flatbuffer
    import tensorflow as tf

    x = tf.keras.Input((8, 8, 3))
    y = lq.layers.QuantConv2D(
        8,
        3,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        padding="same",
        pad_values=1.0,
        use_bias=False,
    )(x)
    y = tf.keras.layers.BatchNormalization()(y)
    y = tf.keras.layers.GlobalAveragePooling2D()(y)
    y = tf.keras.layers.Dense(4)(y)
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(export_flatbuffer(tf.keras.Model(x, y)))
    return path


SUMMARY_FORMAT = re.compile(
    r"Inference timings in us: Init: \d+, First inference: \d+, "
    r"Warmup \(avg\): [0-9.e+]+, Inference \(avg\): [0-9.e+]+"
)


def test_host_benchmark_times_a_real_lce_flatbuffer(tiny_flatbuffer):
    report = bm.benchmark(tiny_flatbuffer, num_threads=2, num_runs=20, warmup_runs=3)
    assert (report.device, report.tool, report.model) == ("host", "lce_interpreter", str(tiny_flatbuffer))
    assert (report.num_threads, report.num_runs, report.warmup_runs, report.count) == (2, 20, 3, 20)
    assert report.init_us > 0 and report.first_us > 0 and report.warmup_avg_us > 0
    assert 0 < report.min_us <= report.avg_us <= report.max_us
    assert 0 <= report.std_us <= report.max_us - report.min_us
    assert SUMMARY_FORMAT.fullmatch(report.summary_line())
    assert isinstance(report.init_us, int) and isinstance(report.min_us, int)
    # the printed line parses back to the same summary numbers (six significant digits)
    again = parse_benchmark_output(
        f"count=20 first=1 curr=1 min=1 max=1 avg=1 std=0\n{report.summary_line()}"
    )
    assert again.init_us == report.init_us and again.avg_us == pytest.approx(report.avg_us, rel=1e-5)


def test_host_benchmark_refuses_a_file_that_is_not_a_flatbuffer(tmp_path):
    bogus = tmp_path / "notes.tflite"
    bogus.write_bytes(b"this is not a flatbuffer" * 4)
    with pytest.raises(BenchmarkError, match="converted by LCE"):
        bm.host_benchmark(bogus, num_runs=1)


# ------------------------------------------------------ the stand-in binary


def write_stand_in(
    folder: Path, output_name: str, *, threads: int, model: Path, to_stderr: bool = True, body: str = None
) -> Path:
    """A shell script standing in for lce_benchmark_model on the device.

    It checks that ``--graph`` names a copy of ``model`` and that
    ``--num_threads`` is ``threads``, records where it ran and its arguments in
    ``folder``, then prints the recorded real output ``output_name``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    output = recorded(output_name)
    assert "__RECORDED__" not in output
    body = (
        body
        if body is not None
        else f"cat {'>&2 ' if to_stderr else ''}<<'__RECORDED__'\n{output}__RECORDED__\n"
    )
    script = folder / "stand_in_lce_benchmark_model"
    script.write_text(
        "#!/bin/sh\n"
        "graph=; threads=\n"
        'for arg in "$@"; do\n'
        '  case "$arg" in\n'
        '    --graph=*) graph="${arg#--graph=}" ;;\n'
        '    --num_threads=*) threads="${arg#--num_threads=}" ;;\n'
        "  esac\n"
        "done\n"
        f'printf "%s\\n" "$0" "$@" > {shlex.quote(str(folder / "argv"))}\n'
        '[ -f "$graph" ] || { echo "ERROR: Failed to mmap model $graph"; exit 1; }\n'
        f'cmp -s "$graph" {shlex.quote(str(model))} || {{ echo "ERROR: $graph is not the model"; exit 1; }}\n'
        f'[ "$threads" = {threads} ] || '
        f'{{ echo "ERROR: expected --num_threads={threads}, got $threads"; exit 2; }}\n' + body
    )
    script.chmod(0o644)  # downloaded binaries are often not executable; the device run makes it so
    return script


def recorded_argv(folder: Path):
    lines = (folder / "argv").read_text().splitlines()
    return Path(lines[0]), lines[1:]


@pytest.fixture
def nasty_model(tmp_path):
    """A model file whose folder and name a shell would split, expand and run."""
    path = tmp_path / NASTY
    path.parent.mkdir(parents=True)
    path.write_bytes(b"TFL3 stand-in model bytes \x00\xff")
    return path


def no_injection(*folders: Path):
    for folder in folders:
        assert not (folder / "pwned").exists() and not (folder / "pwned2").exists(), folder


def test_host_with_a_binary_runs_it_here(tmp_path, nasty_model):
    stand_in = write_stand_in(
        tmp_path / "bin", "benchmark_model_x86_mobilenet_v1_float_4t.log", threads=3, model=nasty_model
    )
    stand_in.chmod(0o755)
    report = bm.benchmark(nasty_model, device="host", binary=stand_in, num_threads=3, num_runs=10)
    expected = RECORDED["benchmark_model_x86_mobilenet_v1_float_4t.log"]
    assert {key: getattr(report, key) for key in TIMINGS} == {key: expected[key] for key in TIMINGS}
    assert (report.device, report.tool, report.num_threads, report.num_runs) == (
        "host",
        "lce_benchmark_model",
        3,
        10,
    )
    _, argv = recorded_argv(tmp_path / "bin")
    assert argv == [f"--graph={nasty_model.resolve()}", "--num_threads=3", "--num_runs=10", "--warmup_runs=1"]
    no_injection(tmp_path, Path.cwd())


# ---------------------------------------------------------------- real sshd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """Debian's OpenSSH server on 127.0.0.1, serving this user with a throwaway key."""
    if not SSHD.exists():
        pytest.skip("/usr/sbin/sshd is absent: apt-get install openssh-server openssh-client")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("ssh or ssh-keygen is absent: apt-get install openssh-client")
    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "AllowTcpForwarding no\nX11Forwarding no\nPrintMotd no\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:  # root's sshd needs its privilege-separation folder
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    log = folder / "sshd.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=sink, stderr=sink)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"sshd did not start: {log.read_text()}")
            time.sleep(0.05)
    user = pwd.getpwuid(os.getuid()).pw_name
    yield SimpleNamespace(
        device=f"ssh:{user}@127.0.0.1:{port}",
        home=Path(pwd.getpwuid(os.getuid()).pw_dir),
        options=(
            f"IdentityFile={folder / 'client_key'}",
            "IdentitiesOnly=yes",
            f"UserKnownHostsFile={folder / 'known_hosts'}",
            "StrictHostKeyChecking=accept-new",
            "LogLevel=ERROR",
        ),
        log=log,
    )
    server.terminate()
    server.wait(timeout=10)


def test_ssh_benchmark_runs_the_binary_on_the_device(sshd, tmp_path, nasty_model):
    name = "benchmark_model_qemu_riscv64_mobilenet_v1.txt"
    stand_in = write_stand_in(tmp_path / "bin", name, threads=4, model=nasty_model)
    report = bm.benchmark(
        nasty_model,
        device=sshd.device,
        num_threads=4,
        num_runs=50,
        warmup_runs=1,
        binary=stand_in,
        ssh_options=sshd.options,
    )
    expected = RECORDED[name]
    assert report.as_dict() == {
        **{key: expected[key] for key in TIMINGS},
        "model": str(nasty_model),
        "device": sshd.device,
        "tool": "lce_benchmark_model",
        "num_threads": 4,
        "num_runs": 50,
        "warmup_runs": 1,
    }
    where, argv = recorded_argv(tmp_path / "bin")
    remote = where.parent
    assert argv == [f"--graph={remote}/model.tflite", "--num_threads=4", "--num_runs=50", "--warmup_runs=1"]
    assert remote.name.startswith("bnnzoo-benchmark.") and remote != tmp_path / "bin"
    assert not remote.exists(), "the temporary folder on the device was not removed"
    no_injection(tmp_path, nasty_model.parent, sshd.home, Path.cwd(), remote.parent)


def test_ssh_flag_mismatch_reports_the_binarys_last_line(sshd, tmp_path, nasty_model):
    stand_in = write_stand_in(
        tmp_path / "bin", "benchmark_model_qemu_riscv64_mobilenet_v1.txt", threads=4, model=nasty_model
    )
    with pytest.raises(
        BenchmarkError, match=r"exited with status 2 \(ERROR: expected --num_threads=4, got 2\)"
    ):
        bm.benchmark(
            nasty_model, device=sshd.device, num_threads=2, binary=stand_in, ssh_options=sshd.options
        )
    where, _ = recorded_argv(tmp_path / "bin")
    assert not where.parent.exists()


def test_ssh_garbage_output_is_an_error(sshd, tmp_path, nasty_model):
    stand_in = write_stand_in(
        tmp_path / "bin",
        "benchmark_model_qemu_riscv64_mobilenet_v1.txt",
        threads=1,
        model=nasty_model,
        body="echo 'Segmentation fault'\n",
    )
    with pytest.raises(BenchmarkError, match="Segmentation fault"):
        bm.benchmark(nasty_model, device=sshd.device, binary=stand_in, ssh_options=sshd.options)
    where, _ = recorded_argv(tmp_path / "bin")
    assert not where.parent.exists()


def test_unreachable_ssh_device_fails_fast(tmp_path, nasty_model):
    if shutil.which("ssh") is None:
        pytest.skip("ssh is absent: apt-get install openssh-client")
    binary = tmp_path / "lce_benchmark_model"
    binary.write_bytes(b"\x7fELF")
    device = f"ssh:nobody@127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(BenchmarkError, match=rf"{re.escape(device)}.*[Cc]onnection refused"):
        bm.benchmark(
            nasty_model, device=device, binary=binary, ssh_options=[f"UserKnownHostsFile={tmp_path / 'kh'}"]
        )
    assert time.monotonic() - start < 10


# ------------------------------------------------------------------ fake adb

FAKE_ADB = '''#!{python}
"""Fake adb: "-s SERIAL push SRC DST" and "-s SERIAL shell CMD" on a local folder."""
import json, os, shutil, subprocess, sys

args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
if serial != os.environ.get("FAKE_ADB_SERIAL"):
    sys.exit("adb: device '%s' not found" % serial)
root = os.environ["FAKE_ADB_ROOT"]
if args[0] == "push":
    src, dst = args[1], args[2]
    assert dst.startswith("/data/local/tmp/"), dst
    dst = root + dst[len("/data/local/tmp"):]
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
    print("%s: 1 file pushed." % src)
elif args[0] == "shell":
    sys.exit(subprocess.run(["sh", "-c", " ".join(args[1:]).replace("/data/local/tmp", root)]).returncode)
else:
    sys.exit("fake adb: unsupported %r" % args)
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    folder = tmp_path / "adb-bin"
    folder.mkdir()
    adb = folder / "adb"
    adb.write_text(FAKE_ADB.replace("{python}", sys.executable))
    adb.chmod(0o755)
    root = tmp_path / "phone-data-local-tmp"
    root.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_LOG", str(tmp_path / "adb.log"))
    monkeypatch.setenv("FAKE_ADB_SERIAL", "emulator-5554")
    return SimpleNamespace(
        root=root,
        calls=lambda: [json.loads(line) for line in (tmp_path / "adb.log").read_text().splitlines()],
    )


def test_adb_benchmark_with_a_fake_adb(fake_adb, tmp_path, nasty_model):
    name = "benchmark_model_am62x_ssd_mobilenet_v2.txt"
    stand_in = write_stand_in(tmp_path / "bin", name, threads=4, model=nasty_model, to_stderr=False)
    report = bm.benchmark(
        nasty_model, device="adb:emulator-5554", num_threads=4, num_runs=20, warmup_runs=2, binary=stand_in
    )
    expected = RECORDED[name]
    assert {key: getattr(report, key) for key in TIMINGS} == {key: expected[key] for key in TIMINGS}
    assert (report.device, report.model, report.num_runs, report.warmup_runs) == (
        "adb:emulator-5554",
        str(nasty_model),
        20,
        2,
    )
    calls = fake_adb.calls()
    assert [call[:3] for call in calls] == [
        ["-s", "emulator-5554", verb] for verb in ("push", "push", "shell", "shell")
    ]
    assert calls[0][3] == str(stand_in.resolve()) and calls[1][3] == str(nasty_model.resolve())
    remote = calls[0][4].rsplit("/", 1)[0]
    assert re.fullmatch(r"/data/local/tmp/bnnzoo-benchmark-[0-9a-f]{12}", remote)
    _, argv = recorded_argv(tmp_path / "bin")
    assert argv == [
        f"--graph={fake_adb.root}{remote[len('/data/local/tmp'):]}/model.tflite",
        "--num_threads=4",
        "--num_runs=20",
        "--warmup_runs=2",
    ]
    assert list(fake_adb.root.iterdir()) == [], "the temporary folder on the phone was not removed"
    no_injection(tmp_path, nasty_model.parent, Path.cwd())


def test_adb_unknown_serial_and_missing_adb(fake_adb, tmp_path, nasty_model, monkeypatch):
    stand_in = write_stand_in(
        tmp_path / "bin", "benchmark_model_am62x_ssd_mobilenet_v2.txt", threads=1, model=nasty_model
    )
    with pytest.raises(
        BenchmarkError, match=r"adb:emulator-9999.*device 'emulator-9999' not found.*adb devices"
    ):
        bm.benchmark(nasty_model, device="adb:emulator-9999", binary=stand_in)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(BenchmarkError, match="adb is not installed"):
        bm.benchmark(nasty_model, device="adb", binary=stand_in)


def test_adb_run_that_hangs_is_stopped(fake_adb, tmp_path, nasty_model):
    stand_in = write_stand_in(
        tmp_path / "bin",
        "benchmark_model_am62x_ssd_mobilenet_v2.txt",
        threads=1,
        model=nasty_model,
        body="sleep 30\n",
    )
    start = time.monotonic()
    with pytest.raises(BenchmarkError, match="did not finish within 1 s"):
        bm.benchmark(nasty_model, device="adb:emulator-5554", binary=stand_in, timeout=1)
    assert time.monotonic() - start < 10
    assert list(fake_adb.root.iterdir()) == []
