"""`cli.py models` answers from a table kept for the models' built layers, not by building them.

Each row is keyed on a digest of the layers its model builds, so a comment or
a refactor that builds the same layers leaves the table valid, and a changed
layer (a width, a quantizer) does not.
"""

import json
import re
import shutil

import pytest

from bnnzoo import zoo
from bnnzoo.export import footprint_table, model_digest
from bnnzoo.zoo.variants import with_quantizers

CHEAP = ["siman_resnet20", "siman_vgg_small"]  # 32 px CIFAR layouts: seconds to build


@pytest.fixture(scope="module")
def committed():
    return footprint_table.read_table(footprint_table.TABLE)


def test_committed_table_holds_for_the_current_code_and_lists_every_model(committed):
    """Each model builds the layers its row was counted on (built to find out
    unless the code is, comments and docstrings aside, the code the table was
    checked against), with the stack it was counted with."""
    assert sorted(committed["models"]) == zoo.list_models()
    assert committed["stack"] == footprint_table.stack_versions(), (
        f"TensorFlow, tf-keras or larq changed: `{footprint_table.REGENERATE}` rewrites the table.")
    stale = footprint_table.stale_models(committed)
    assert not stale, (f"These models build other layers than their rows were counted on: "
                       f"{', '.join(stale)}; `{footprint_table.REGENERATE}` rewrites the table.")


def test_rows_counted_now_are_the_committed_ones(committed):
    """The digest and the counts of a model built now (after another model, so
    Keras numbers its layers differently) are its committed row."""
    zoo.get_model("siman_vgg_small", input_shape=(16, 16, 3), num_classes=10, filters=8)
    for name in CHEAP:
        assert footprint_table.count_model(name) == committed["models"][name], name


def test_code_that_builds_the_same_layers_keeps_the_table_valid(committed, monkeypatch):
    """Other code (a comment, a refactor): the shortcut no longer applies, the
    models are built, and their layers are those the table was counted on."""
    monkeypatch.setattr(footprint_table, "sources_digest", lambda folders=(): "other code")
    calls = []

    def refactored(name, **kwargs):  # another way to reach the same builder
        calls.append(name)
        return zoo.model_entry(name).build(**kwargs)

    monkeypatch.setattr(zoo, "get_model", refactored)
    assert footprint_table.stale_models(committed, CHEAP) == []
    assert calls == CHEAP  # built, not taken on trust


@pytest.mark.parametrize("change", ["width", "quantizer", "classes"])
def test_a_changed_layer_makes_its_row_stale(committed, monkeypatch, change):
    name = CHEAP[0]
    build = zoo.get_model
    changed = {
        "width": lambda: build(name, filters=32),
        "quantizer": lambda: with_quantizers(build(name), kernel_quantizer="ste_sign"),
        "classes": lambda: build(name, num_classes=100),
    }[change]
    monkeypatch.setattr(footprint_table, "sources_digest", lambda folders=(): "other code")
    monkeypatch.setattr(zoo, "get_model", lambda n, **kwargs: changed() if n == name
                        else build(n, **kwargs))
    assert footprint_table.stale_models(committed, CHEAP) == [name]


def test_comments_docstrings_and_layout_leave_the_code_digest_but_code_does_not(tmp_path):
    source = '"""A module."""\n\ndef f(x):\n    """Twice x."""\n    return 2 * x\n'
    same = ('"""Another docstring."""\n# a comment\n\ndef f(x):  # why\n\n'
            '    return 2 * x  # more\n')
    assert model_digest.code_digest(source) == model_digest.code_digest(same)
    assert model_digest.code_digest(source) != model_digest.code_digest(
        source.replace("2 * x", "3 * x"))
    copies = [shutil.copytree(folder, tmp_path / folder.name) for folder in model_digest.SOURCES]
    before = model_digest.sources_digest(copies)
    for path in sorted(copies[0].glob("*.py")):
        path.write_text("# a comment at the top of every zoo file\n" + path.read_text())
    assert model_digest.sources_digest(copies) == before


def test_another_stack_counts_by_building_once_then_reads_the_cache(tmp_path, monkeypatch,
                                                                    committed):
    """With the table counted on another TensorFlow, the rows are counted on
    built models (the committed rows, as the layers are the same) and cached."""
    stale = tmp_path / "footprints.json"
    stale.write_text(json.dumps({**committed, "stack": {"tensorflow": "0.0"}}))
    monkeypatch.setattr(footprint_table, "TABLE", stale)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    notes = []
    rows = footprint_table.model_footprints(CHEAP[:1], note=notes.append)
    assert len(notes) == 1 and footprint_table.REGENERATE in notes[0] and "versions" in notes[0]
    expected = {k: v for k, v in committed["models"][CHEAP[0]].items() if k != "layers"}
    assert rows == {CHEAP[0]: expected}

    def no_build(name):
        raise AssertionError(f"{name} built again")

    monkeypatch.setattr(footprint_table, "count_model", no_build)
    notes.clear()
    assert footprint_table.model_footprints(CHEAP[:1], note=notes.append) == rows and not notes


def test_describe_models_gives_each_papers_top1_and_where_it_was_measured():
    rows = {row["name"]: row for row in footprint_table.describe_models(
        ["bireal18", "siman_resnet20", "resnet18"])}
    assert (rows["bireal18"]["paper_top1"], rows["bireal18"]["paper_top1_dataset"]) == (56.4, "ImageNet")
    assert (rows["siman_resnet20"]["paper_top1"], rows["siman_resnet20"]["paper_top1_dataset"]) == (
        87.4, "CIFAR-10")
    assert rows["resnet18"]["paper_top1"] is None and rows["resnet18"]["paper_top1_dataset"] is None
    assert "layers" not in rows["bireal18"]  # the key, not a count
    with pytest.raises(KeyError, match="Unknown model 'bireal19'"):
        footprint_table.describe_models(["bireal19"])


def test_models_table_columns_line_up_and_train_help_names_the_models(invoke):
    result = invoke("models", "bireal18", "siman_resnet20", "resnet18")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1  # right-aligned to one edge
    header = lines[0]
    ends = [m.start() for m in re.finditer(r"\S(?=  |$)", header)][1:]  # right-aligned columns
    assert len(ends) == 9
    for line in lines[1:]:  # every cell ends where its header does
        assert all(line[end] != " " and line[end + 1:end + 3] in ("  ", "") for end in ends), line
    assert "87.4 % (CIFAR-10)" in result.output and "56.4 %" in result.output
    help_text = invoke("train", "--help").output
    assert all(name in help_text.replace("\n", " ") for name in zoo.list_models())
