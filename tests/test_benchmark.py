"""The benchmark run for real: the host interpreter, a local binary, ssh and adb devices.

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
from bnnzoo.export.benchmark_devices import BenchmarkError
from bnnzoo.export.benchmark_report import parse_benchmark_output
from recorded_outputs import NASTY, RECORDED, TIMINGS, recorded

DATA = Path(__file__).parent / "data"
SSHD = Path("/usr/sbin/sshd")


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
