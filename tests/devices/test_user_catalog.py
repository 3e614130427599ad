"""A user catalog folder (--catalog / $EDGEPIPE_CATALOG): its targets join the bundled ones
with the same validation, a bundled name is refused naming both files, and `resolve_target`
sees them; `validate_targets` and `add_target` check and copy files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgepipe.devices.catalog import (
    CATALOG_DIR,
    CATALOG_ENV,
    add_target,
    get_target,
    load_catalog,
    validate_targets,
)
from edgepipe.errors import InputError, TargetError
from edgepipe.profiling.runners.estimated import EstimatorRunner
from edgepipe.profiling.target import resolve_target


def write_target(folder: Path, name: str, based_on: str = "rpi5", **changes) -> Path:
    """A valid target file ``name``.yaml in ``folder``: a bundled one renamed and changed."""
    data = yaml.safe_load((CATALOG_DIR / f"{based_on}.yaml").read_text())
    data.update(name=name, title=f"My board {name}", **changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _no_user_catalog(monkeypatch):
    monkeypatch.delenv(CATALOG_ENV, raising=False)


def test_a_user_target_from_the_option_or_the_variable(tmp_path, monkeypatch):
    write_target(tmp_path / "mine", "myboard")
    assert "myboard" not in load_catalog(detect_host=False)
    with pytest.raises(TargetError, match="myboard"):
        get_target("myboard")
    found = get_target("myboard", user=tmp_path / "mine")
    assert found.title == "My board myboard" and found.kind == "sbc"
    both = load_catalog(detect_host=False, user=tmp_path / "mine")
    assert {"myboard", "rpi5", "stm32f746"} <= set(both)

    monkeypatch.setenv(CATALOG_ENV, str(tmp_path / "mine"))
    assert get_target("myboard").name == "myboard"
    target = resolve_target("myboard")  # the profile verb's lookup sees it
    assert isinstance(target.runner, EstimatorRunner) and target.entry.name == "myboard"
    # the option wins over the variable
    write_target(tmp_path / "other", "otherboard")
    assert "otherboard" in load_catalog(detect_host=False, user=tmp_path / "other")
    assert "myboard" not in load_catalog(detect_host=False, user=tmp_path / "other")
    assert resolve_target("otherboard", catalog=tmp_path / "other").name == "otherboard"


def test_a_missing_folder_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(InputError) as caught:
        load_catalog(user=tmp_path / "nope")
    assert caught.value.reference == "bad-catalog-dir" and "--catalog" in caught.value.message
    monkeypatch.setenv(CATALOG_ENV, str(tmp_path / "nope"))
    with pytest.raises(InputError) as caught:
        get_target("rpi5")
    assert caught.value.reference == "bad-catalog-dir"
    assert CATALOG_ENV in caught.value.message and CATALOG_ENV in caught.value.hint


def test_a_bundled_name_is_refused_naming_both_files(tmp_path):
    clash = write_target(tmp_path, "rpi5", based_on="rpi4b")
    with pytest.raises(InputError) as caught:
        get_target("host", user=tmp_path)
    error = caught.value
    assert error.reference == "target-name-clash"
    assert str(clash) in error.message and str(CATALOG_DIR / "rpi5.yaml") in error.message
    assert error.details == {"file": str(clash), "bundled": str(CATALOG_DIR / "rpi5.yaml")}


def test_user_files_get_the_bundled_validation(tmp_path):
    path = write_target(tmp_path, "badboard")
    data = yaml.safe_load(path.read_text())
    data["cpu"]["clock_mhz"] = {"value": 1800, "kind": "datasheet"}  # no source
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as caught:
        load_catalog(user=tmp_path)
    assert caught.value.reference == "bad-target-file"
    assert "cpu.clock_mhz" in caught.value.message


def test_validate_names_every_problem(tmp_path):
    good = write_target(tmp_path, "goodboard")
    write_target(tmp_path, "rpi5", based_on="rpi4b")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    wrong = write_target(tmp_path, "wrongname")
    wrong.write_text(wrong.read_text().replace("name: wrongname", "name: another"))
    found = validate_targets(tmp_path)
    assert not found.ok and found.targets == ("goodboard",)
    problems = {Path(p.file).name: p.reference for p in found.problems}
    assert problems == {"rpi5.yaml": "target-name-clash", "broken.yaml": "bad-target-file",
                        "wrongname.yaml": "bad-target-file"}
    single = validate_targets(good)
    assert single.ok and single.targets == ("goodboard",) and single.files == (str(good),)
    with pytest.raises(InputError) as caught:
        validate_targets(tmp_path / "absent")
    assert caught.value.reference == "bad-catalog-dir"


def test_add_copies_validates_and_refuses_to_overwrite(tmp_path):
    source = write_target(tmp_path / "src", "myboard")
    catalog = tmp_path / "catalog" / "nested"
    added = add_target(source, catalog)
    assert added.name == "myboard" and not added.replaced
    assert (catalog / "myboard.yaml").read_text() == source.read_text()
    assert get_target("myboard", user=catalog).title == "My board myboard"
    with pytest.raises(InputError) as caught:
        add_target(source, catalog)
    assert caught.value.reference == "target-exists"
    assert add_target(source, catalog, force=True).replaced
    assert [p.name for p in catalog.iterdir()] == ["myboard.yaml"]  # nothing staged left
    clash = write_target(tmp_path / "src", "stm32f746", based_on="stm32h743")
    with pytest.raises(InputError) as caught:
        add_target(clash, catalog)
    assert caught.value.reference == "target-name-clash"
    assert not (catalog / "stm32f746.yaml").exists()
