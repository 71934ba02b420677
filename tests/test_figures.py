"""Every measured figure in README.md and docs/*.md is rendered from a results
file by ``benchmarks/figures.py``: the committed documents pass its
``--check``, and an edited figure or a changed results value fails it, naming
the document, the line and the marker."""

import json
import re
import shutil

import pytest

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"


@pytest.fixture
def figures(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import figures
    return figures


@pytest.fixture
def copy(tmp_path):
    """The documents and results files, where a test may change them."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(BENCHMARKS / "results", tmp_path / "benchmarks" / "results")
    return tmp_path


def _check(figures, root, capsys):
    code = figures.main(["--check", "--root", str(root)])
    return code, capsys.readouterr().err


def test_committed_documents_are_the_rendering_of_their_results_files(figures, capsys):
    assert figures.main(["--check"]) == 0, capsys.readouterr().err
    readme = (REPO / "README.md").read_text()
    measurements = (REPO / "docs" / "measurements.md").read_text()
    assert len(figures.FIGURE.findall(readme)) >= 20 and figures.BLOCK.search(readme)
    kinds = {m["kind"] for m in figures.BLOCK.finditer(measurements)}
    assert kinds >= {"accuracy-table", "startup-table", "throughput-tables", "deployment-table"}


def test_readme_stays_short_and_keeps_the_test_command():
    readme = (REPO / "README.md").read_text()
    assert readme.count("\n") <= 400
    assert re.search(r"<!-- test-command -->\n```sh\n.*pytest\n```\n<!-- /test-command -->", readme)


def test_an_edited_figure_fails_the_check_naming_document_line_and_marker(figures, copy, capsys):
    readme = copy / "README.md"
    text = readme.read_text()
    first = figures.FIGURE.search(text)
    line = text.count("\n", 0, first.start()) + 1
    head = first.group(0)[:first.group(0).index("-->") + 3]
    readme.write_text(text[:first.start()] + f"{head}9.99<!-- /figure -->" + text[first.end():])
    code, err = _check(figures, copy, capsys)
    assert code == 1
    assert f"README.md:{line}: {head}: reads '9.99'" in err
    # --write renders it again from its file; then the check passes.
    assert figures.main(["--write", "--root", str(copy)]) == 0
    assert readme.read_text() == text
    assert _check(figures, copy, capsys)[0] == 0


def test_a_changed_results_value_fails_the_check(figures, copy, capsys):
    startup = copy / "benchmarks" / "results" / "startup_time.json"
    result = json.loads(startup.read_text())
    result["tracing"][0]["start_speedup"] = 3.2
    startup.write_text(json.dumps(result))
    code, err = _check(figures, copy, capsys)
    assert code == 1
    marker = "<!-- figure: startup_time.json tracing.0.start_speedup :.1f -->"
    assert re.search(rf"README\.md:\d+: {re.escape(marker)}: reads '6\.0', "
                     r"startup_time\.json gives '3\.2'", err), err
    # the start-up table in docs/measurements.md renders the same value
    assert re.search(r"docs/measurements\.md:\d+: <!-- startup-table: startup_time\.json -->: "
                     r"not the rendering of startup_time\.json", err), err


def test_a_changed_table_fails_the_check(figures, copy, capsys):
    accuracy = copy / "benchmarks" / "results" / "accuracy_fashion_mnist.json"
    result = json.loads(accuracy.read_text())
    result["rows"][1]["runs"][0]["keras_top1"] += 0.01
    accuracy.write_text(json.dumps(result))
    code, err = _check(figures, copy, capsys)
    assert code == 1
    for document in ("README.md", "docs/measurements.md"):
        assert re.search(rf"{re.escape(document)}:\d+: <!-- accuracy-table: "
                         r"benchmarks/results/accuracy_fashion_mnist\.json -->: not the rendering",
                         err), err


def test_a_marker_without_its_value_or_file_fails(figures, copy, capsys):
    readme = copy / "README.md"
    readme.write_text(readme.read_text()
                      + "\n<!-- figure: startup_time.json tracing.7.start_speedup :.1f -->6.0"
                        "<!-- /figure -->\n<!-- figure: nowhere.json date -->2026<!-- /figure -->\n"
                        "<!-- figure: startup_time.json date\n-->2026<!-- /figure -->\n")
    code, err = _check(figures, copy, capsys)
    assert code == 1
    assert "no value at 'tracing.7.start_speedup'" in err
    assert "no results file benchmarks/results/nowhere.json" in err
    assert "<!-- figure: startup_time.json date: not closed" in err


def test_format_scales_then_formats(figures):
    assert figures.formatted(0.697700023651123, "*100:.2f") == "69.77"
    assert figures.formatted(1580.0, "/60:.1f") == "26.3"
    assert figures.formatted(2136144, ":,") == "2,136,144"
    assert figures.formatted(-0.23999999999999577, ":+.2f") == "-0.24"
    assert figures.formatted("2026-12-02", None) == "2026-12-02"
    with pytest.raises(figures.FigureError):
        figures.formatted(1.0, "x100")
