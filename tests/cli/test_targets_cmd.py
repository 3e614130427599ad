"""`edgepipe targets list | show | check | validate | add`, custom targets and
precision-aware estimates through the real CLI."""

from __future__ import annotations


def test_list_and_show(cli):
    listed = cli("targets", "list", "--json")
    assert listed.code == 0, listed
    names = {t["name"] for t in listed.json()["result"]["targets"]}
    assert {"stm32f746", "rpi5", "jetson-orin-nano", "host", "nrf52840"} <= names
    human = cli("targets", "list")
    assert "stm32f746" in human.stdout and "tflm" in human.stdout
    shown = cli("targets", "show", "rpi5", "--json")
    figures = {f["path"]: f for f in shown.json()["result"]["figures"]}
    assert figures["cpu.clock_mhz"]["value"] == 2400
    assert figures["cpu.clock_mhz"]["source"].startswith("datasheet")
    assert figures["power.active_w"]["source"].startswith("assumption")
    assert "rpi-product" in cli("targets", "show", "rpi5").stdout
    unknown = cli("targets", "show", "jetson-nano")
    assert unknown.code == 1 and "jetson-orin-nano" in unknown.stderr


def test_check_fits_and_require_fit(cli, tflite_models):
    fits = cli("targets", "check", tflite_models["int8"], "stm32f746", "--json")
    assert fits.code == 0, fits
    result = fits.json()["result"]
    assert result["fits"] is True and result["arena"]["verified"]
    human = cli("targets", "check", tflite_models["int8"], "stm32f746")
    assert "fits" in human.stdout and "estimated" in human.stdout
    too_big = cli("targets", "check", tflite_models["wide"], "stm32f746", "--json")
    assert too_big.code == 0 and too_big.json()["result"]["fits"] is False
    required = cli("targets", "check", tflite_models["wide"], "stm32f746", "--require-fit")
    assert required.code == 1 and "does-not-fit" in required.stderr
    refused = cli("targets", "check", tflite_models["fp16"], "stm32f746")
    assert refused.code == 1 and "tflm-refused" in refused.stderr and "int8" in refused.stderr
    not_mcu = cli("targets", "check", tflite_models["int8"], "rpi5")
    assert not_mcu.code == 1 and "not-an-mcu" in not_mcu.stderr


def _board(folder, name="myboard", based_on="rpi5"):
    import yaml

    from edgepipe.devices.catalog import CATALOG_DIR

    data = yaml.safe_load((CATALOG_DIR / f"{based_on}.yaml").read_text())
    data.update(name=name, title="My board")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_custom_targets_from_the_option_and_the_variable(cli, tmp_path, monkeypatch,
                                                         digits_artifacts):
    monkeypatch.delenv("EDGEPIPE_CATALOG", raising=False)
    _board(tmp_path / "mine")
    assert cli("targets", "show", "myboard").code == 1
    listed = cli("targets", "list", "--catalog", tmp_path / "mine", "--json")
    assert "myboard" in {t["name"] for t in listed.json()["result"]["targets"]}
    shown = cli("targets", "show", "myboard", "--catalog", tmp_path / "mine", "--json")
    assert shown.code == 0 and shown.json()["result"]["title"] == "My board"
    monkeypatch.setenv("EDGEPIPE_CATALOG", str(tmp_path / "mine"))
    assert "myboard" in cli("targets", "list").stdout
    profiled = cli("profile", digits_artifacts / "digits-cnn.onnx", "--target", "myboard",
                   "--json")
    assert profiled.code == 0, profiled
    result = profiled.json()["result"]
    assert result["target"]["name"] == "myboard" and result["mode"] == "estimated"
    # the option wins over the variable
    _board(tmp_path / "other", "otherboard")
    other = cli("profile", digits_artifacts / "digits-cnn.onnx", "--target", "otherboard",
                "--catalog", tmp_path / "other", "--json")
    assert other.code == 0 and other.json()["config"]["catalog"] == str(tmp_path / "other")
    missing = cli("targets", "list", "--catalog", tmp_path / "absent")
    assert missing.code == 1 and "bad-catalog-dir" in missing.stderr


def test_a_clash_with_a_bundled_target_names_both_files(cli, tmp_path):
    clash = _board(tmp_path, "rpi5", based_on="rpi4b")
    result = cli("targets", "list", "--catalog", tmp_path)
    assert result.code == 1 and "target-name-clash" in result.stderr
    flat = " ".join(result.stderr.split())
    assert str(clash) in flat and "catalog/rpi5.yaml" in flat


def test_validate_and_add(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEPIPE_CATALOG", raising=False)
    good = _board(tmp_path / "new")
    valid = cli("targets", "validate", good, "--json")
    assert valid.code == 0 and valid.json()["result"]["targets"] == ["myboard"]
    assert "valid: myboard" in cli("targets", "validate", tmp_path / "new").stdout
    bad = tmp_path / "bad"
    _board(bad, "rpi5", based_on="rpi4b")
    (bad / "broken.yaml").write_text("name: broken\ntitle: x\n")
    invalid = cli("targets", "validate", bad, "--json")
    assert invalid.code == 1
    error = invalid.json()["error"]
    assert error["reference"] == "invalid-targets"
    assert {p["reference"] for p in error["details"]["problems"]} == {
        "target-name-clash", "bad-target-file"}
    human = cli("targets", "validate", bad)
    assert "rpi5.yaml" in human.stderr and "broken.yaml" in human.stderr

    nowhere = cli("targets", "add", good)
    assert nowhere.code == 1 and "no-user-catalog" in nowhere.stderr
    catalog = tmp_path / "catalog"
    added = cli("targets", "add", good, "--catalog", catalog, "--json")
    assert added.code == 0, added
    assert added.json()["result"] == {"name": "myboard", "file": str(catalog / "myboard.yaml"),
                                      "replaced": False}
    again = cli("targets", "add", good, "--catalog", catalog)
    assert again.code == 1 and "target-exists" in again.stderr and "--force" in again.stderr
    monkeypatch.setenv("EDGEPIPE_CATALOG", str(catalog))
    forced = cli("targets", "add", good, "--force")
    assert forced.code == 0 and "replaced target myboard" in forced.stdout
    assert cli("targets", "show", "myboard").code == 0
    refused = cli("targets", "add", bad / "rpi5.yaml")
    assert refused.code == 1 and "target-name-clash" in refused.stderr


def test_int8_check_uses_int8_figures_and_mcus_refuse_other_formats(cli, tflite_models,
                                                                     digits_artifacts):
    checked = cli("targets", "check", tflite_models["int8"], "nrf52840", "--json")
    assert checked.code == 0, checked
    estimate = checked.json()["result"]["estimate"]
    assert "peak int8" in estimate["model"] and "float" not in estimate["model"]
    refused = cli("profile", digits_artifacts / "digits-cnn.onnx", "--target", "stm32f746")
    assert refused.code == 1 and "format-not-on-target" in refused.stderr
    assert "Cannot run this format there" in refused.stderr
    assert "TFLite (.tflite)" in " ".join(refused.stderr.split())


def test_a_bad_thread_variable_is_an_error(cli, digits_artifacts, monkeypatch):
    monkeypatch.setenv("EDGEPIPE_THREADS", "many")
    result = cli("profile", digits_artifacts / "digits-cnn.onnx", "--runs", 1, "--duration", 0)
    assert result.code == 1 and "bad-threads" in result.stderr
    assert "EDGEPIPE_THREADS" in result.stderr
