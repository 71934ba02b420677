"""`cli.py models` answers from a table kept for the current code, not by building every model."""

import json
import re

import pytest

from bnnzoo import zoo
from bnnzoo.export import footprint_table


def test_committed_table_is_the_current_codes_and_lists_every_model():
    table = footprint_table.read_table(footprint_table.TABLE)
    assert table.get("code") == footprint_table.code_hash(), (
        f"The zoo, the quantizers or the stack changed: `{footprint_table.REGENERATE}` "
        "rewrites the table (a few minutes).")
    assert sorted(table["models"]) == zoo.list_models()


def test_an_outdated_table_counts_by_building_once_then_reads_the_cache(tmp_path, monkeypatch):
    """With the table made for other code, the rows are counted on built models
    (which also checks the committed rows of two cheap models) and cached."""
    committed = footprint_table.read_table(footprint_table.TABLE)["models"]
    stale = tmp_path / "footprints.json"
    stale.write_text(json.dumps({"code": "other code", "models": committed}))
    monkeypatch.setattr(footprint_table, "TABLE", stale)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    notes = []
    names = ["siman_vgg_small", "siman_resnet20"]  # the first counted, the second from the cache
    rows = footprint_table.model_footprints(names, note=notes.append)
    assert len(notes) == 1 and footprint_table.REGENERATE in notes[0]
    assert rows == {name: committed[name] for name in names}

    def no_build(name):
        raise AssertionError(f"{name} built again")

    monkeypatch.setattr(footprint_table, "count_model", no_build)
    notes.clear()
    assert footprint_table.model_footprints(names[:1], note=notes.append) == {
        names[0]: committed[names[0]]} and not notes


def test_describe_models_gives_each_papers_top1_and_where_it_was_measured():
    rows = {row["name"]: row for row in footprint_table.describe_models(
        ["bireal18", "siman_resnet20", "resnet18"])}
    assert (rows["bireal18"]["paper_top1"], rows["bireal18"]["paper_top1_dataset"]) == (56.4, "ImageNet")
    assert (rows["siman_resnet20"]["paper_top1"], rows["siman_resnet20"]["paper_top1_dataset"]) == (
        87.4, "CIFAR-10")
    assert rows["resnet18"]["paper_top1"] is None and rows["resnet18"]["paper_top1_dataset"] is None
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
