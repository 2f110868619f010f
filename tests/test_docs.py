"""The documentation: the scenario reference that docs/hooks/scenario_reference.py writes
when the site is built names every field of the schema with what the loader checks, and
the README's examples and links hold."""

import dataclasses
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest
import yaml

from simfl.scenario import schema, scenario_from_dict
from simfl.scenario.rules import NUMBERS
from simfl.scenario.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("scenario_reference", ROOT / "docs" / "hooks" / "scenario_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


ref = load_generator()
PAGE = ref.reference_markdown()


def section_text(anchor: str) -> str:
    """The page's text from the heading with this anchor to the next heading."""
    return re.search(rf"^## .*\{{#{re.escape(anchor)}\}}\n(.*?)(?=^## |\Z)", PAGE, re.S | re.M).group(1)


def row(anchor: str, name: str) -> list[str]:
    """The cells of the row of `name` in the table of the section with this anchor."""
    line = next(line for line in section_text(anchor).splitlines() if line.startswith(f"| `{name}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_the_reference_names_every_field_of_every_schema_dataclass():
    sections = ref.sections()
    for section in sections:
        text = section_text(section.anchor)
        for f in dataclasses.fields(section.cls):
            if section.path == "" and f.name in ref.INTERNAL:
                continue
            assert f"| `{f.name}` |" in text, (section.path, f.name)
    # every dataclass of the schema is a section of the file, or the distribution's value type
    documented = {section.cls for section in sections}
    defined = {cls for _, cls in inspect.getmembers(schema, dataclasses.is_dataclass)
               if cls.__module__ == schema.__name__}
    assert defined - documented == {schema.Distribution}
    assert "{#distributions}" in PAGE
    # every top-level key the loader accepts is on the page
    for key in SECTIONS:
        assert f"| `{key}` |" in section_text("top-level"), key


def test_a_field_without_a_docstring_stops_the_page():
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        documented: int = 1
        """Has its docstring."""
        forgotten: float = 2.0

    with pytest.raises(ValueError, match="Undocumented.forgotten has no docstring"):
        ref.section_table(ref.Section("x", Undocumented))


def test_every_bound_belongs_to_a_field_of_its_section():
    classes = {section.path: section.cls for section in ref.sections()}
    for path, rules in NUMBERS.items():
        fields = {f.name for f in dataclasses.fields(classes[path])}
        assert set(rules) <= fields, (path, set(rules) - fields)


def test_hand_picked_facts_read_in_the_code():
    # schema.Task.rounds = 200; simfl.limits.INT_RANGES["task.rounds"] = (1, 100_000)
    assert row("task", "rounds")[1:4] == ["integer", "`200`", "integer in [1, 100000]"]
    # a cell's band: required (rules.NUMBERS) and (0, 1e12] Hz (limits.PHYSICAL_RANGES)
    assert row("cells", "bandwidth_hz")[2:4] == ["required", "(0, 1e12] Hz"]
    # noise: the file format's default -174, held to the physical [-250, -100] dBm/Hz
    assert row("cells", "noise_dbm_per_hz")[2:4] == ["`-174`", "[-250, -100] dBm/Hz"]
    assert row("optimisation", "t_max_s")[2:4] == ["`60`", "(0, 1e7] s"]
    assert row("optimisation", "err_max")[3] == "(0, 1)"
    assert row("aggregation", "mode")[3] == "one of: `sync`, `fedbuff`, `fedasync`"
    assert row("network-handover", "hysteresis_db")[3] == "[0, 100] dB"
    assert row("server", "synthesis_images_per_s")[2] == "`null`"  # inf: instantly
    assert row("devices", "availability")[2] == "`always`"
    # the components' fields (FIELDS) and the TR 38.901 models' (FieldRange)
    assert "`speed_mps`: (0, 1000], required" in section_text("mobility")
    assert "`min_doppler_hz`: [0, 1e7], default `0`" in section_text("fading")
    assert "`h_ut_m` (1.5; 1.5-13 m)" in section_text("path-loss-models")
    # policy_settings from the registered policies' Setting declarations
    assert row("policy_settings", "fedprox")[1:4] == ["`mu`", "`0.01`", ">= 0"]


def test_the_readmes_scenario_is_valid():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- minimal-scenario -->\s*```yaml\n(.*?)```\s*<!-- /minimal-scenario -->", readme, re.S)
    assert block, "the README must keep its scenario between its markers"
    scenario = scenario_from_dict(yaml.safe_load(block.group(1)), "README.md")
    assert scenario.n_devices == 10 and scenario.policies == ("tfl", "fimi")


def test_the_readmes_links_reach_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links to the documentation's pages"
    for target in local:
        assert (ROOT / target).exists(), target


def test_the_site_has_a_page_for_every_docs_page():
    # every Markdown page under docs/ is in mkdocs.yml's nav (mkdocs build --strict checks
    # the other way: every page in the nav exists, and every link and anchor)
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").rglob("*.md")):
        assert f" {page.relative_to(ROOT / 'docs').as_posix()}" in nav, page
