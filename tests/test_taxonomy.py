"""classifiers/taxonomy: the shipped tree is valid and answers path and arXiv questions; a bad
tree is refused with the node named."""

from __future__ import annotations

import copy

import pytest
import yaml

from scicurate.classifiers import taxonomy as tx
from scicurate.config import ConfigError

SIX = ["mathematics", "physics", "chemistry", "life_science", "earth_science", "materials_science"]


@pytest.fixture(scope="module")
def tree():
    return tx.default()


def test_the_shipped_tree_has_three_levels_and_the_six_targets(tree):
    assert tree.targets() == SIX
    assert {n.level for n in tree.nodes.values()} == {1, 2, 3}
    assert len([n for n in tree.level1() if not n.target]) >= 5          # the non-science rest of a pool
    for domain in SIX:                                                   # every target is refined
        assert tree.children(domain), domain
    assert all(n.target == tree.node(n.domain).target for n in tree.nodes.values())
    assert tree.ref.startswith("taxonomy@1:") and len(tree.sha256) == 64


def test_ids_are_paths_of_slugs_and_paths_walk_down(tree):
    for node in tree.nodes.values():
        assert node.id.count(".") == node.level - 1
        path = tree.path(node.id)
        assert len(path) == node.level and path[-1] == node.id and path[0] == node.domain
        assert tree.is_valid_path(path)
        for child in node.children:
            assert tree.node(child).parent == node.id
    assert tree.path("physics.condensed_matter.superconductivity") == (
        "physics", "physics.condensed_matter", "physics.condensed_matter.superconductivity")
    assert not tree.is_valid_path(("chemistry", "physics.condensed_matter"))
    assert not tree.is_valid_path(())
    with pytest.raises(KeyError, match="no taxonomy node"):
        tree.node("physics.alchemy")


@pytest.mark.parametrize(("categories", "expected"), [
    ("cond-mat.supr-con cond-mat.str-el", "physics.condensed_matter.superconductivity"),   # primary wins
    ("cond-mat.mtrl-sci", "materials_science"),
    ("cond-mat.unknown-sub", "physics.condensed_matter"),                  # archive fallback
    ("astro-ph.EP", "earth_science.planetary_science"),
    ("astro-ph", "physics.astrophysics"),
    ("physics.chem-ph", "chemistry.physical_chemistry"),
    ("physics.geo-ph", "earth_science.geology_geophysics"),
    ("math-ph math.MP", "physics.mathematical_physics"),
    ("math.ST", "mathematics.probability_statistics.mathematical_statistics"),
    ("math.ZZ", "mathematics"),
    ("q-bio.OT", "life_science"),
    ("cs.IT math.IT", "computer_science"),
    ("q-fin.GN", "economics_finance"),
    ("stat.ML", "statistics_data"),
    ("zz.AB", None), ("", None),
])
def test_arxiv_categories_map_to_nodes(tree, categories, expected):
    assert tree.from_arxiv(categories) == expected


def _minimal():
    return {"version": 1, "domains": [
        {"id": "physics", "name": "Physics", "target": True, "description": "Physics.", "arxiv": ["physics"],
         "children": [{"id": "optics", "name": "Optics", "description": "Light.",
                       "children": [{"id": "lasers", "name": "Lasers", "description": "Lasers."}]}]},
        {"id": "other", "name": "Other", "target": False, "description": "The rest."}]}


def test_a_minimal_tree_loads_from_a_file_and_the_hash_follows_the_bytes(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(_minimal()))
    first = tx.load(path)
    assert list(first.nodes) == ["physics", "physics.optics", "physics.optics.lasers", "other"]
    path.write_text(yaml.safe_dump(_minimal()) + "# a comment\n")
    assert tx.load(path).sha256 != first.sha256


def _broken(edit):
    data = copy.deepcopy(_minimal())
    edit(data)
    return data


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(extra=1), "exactly the keys"),
    (lambda d: d.update(version=0), "positive integer"),
    (lambda d: d.update(domains=[]), "non-empty list"),
    (lambda d: d["domains"].append(copy.deepcopy(d["domains"][1])), "duplicate node id 'other'"),
    (lambda d: d["domains"][0].update(id="Physics"), "lower-case slug"),
    (lambda d: d["domains"][0].update(colour="red"), "unknown keys"),
    (lambda d: d["domains"][0].pop("target"), "needs target"),
    (lambda d: d["domains"][0]["children"][0].update(target=False), "level-1 nodes only"),
    (lambda d: d["domains"][0]["children"][0].update(description=" "), "physics.optics' needs a non-empty description"),
    (lambda d: d["domains"][0]["children"][0]["children"][0].update(
        children=[{"id": "deep", "name": "Deep", "description": "Too deep."}]), "level 4"),
    (lambda d: d["domains"][1].update(arxiv=["physics"]), "arXiv 'physics' is on both"),
    (lambda d: d["domains"][1].update(arxiv=["not a category"]), "arxiv must be a list"),
    (lambda d: d["domains"][0].update(target=False), "no level-1 node is a target"),
])
def test_a_broken_tree_is_refused_with_the_node_named(edit, message):
    with pytest.raises(ConfigError, match=message):
        tx.from_dict(_broken(edit))


def test_unreadable_and_non_yaml_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read taxonomy"):
        tx.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains: [unclosed\n")
    with pytest.raises(ConfigError, match="not YAML"):
        tx.load(bad)
