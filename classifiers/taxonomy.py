"""The three-level science taxonomy (`classifiers/taxonomy.yaml`): loaded, validated, queried.

A node's id is its path of slugs (`physics.condensed_matter.superconductivity`), stable across
runs and releases; documents carry a level-1/2/3 path of these ids. The tree is data: this
module only checks it and answers questions about it (path of a node, its level-1 domain, the
target domains, which node an arXiv category belongs to). Pure Python, no Beam.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scicurate.config import ConfigError, read_yaml

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")
MAX_DEPTH = 3
_SLUG = re.compile(r"[a-z][a-z0-9_]*\Z")
_ARXIV = re.compile(r"[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?\Z")
_NODE_KEYS = {"id", "name", "description", "target", "arxiv", "children"}


@dataclass(frozen=True, slots=True)
class Node:
    id: str                       # dotted path of slugs: "physics.condensed_matter"
    name: str
    description: str
    level: int                    # 1, 2 or 3
    parent: str | None
    target: bool                  # one of the target domains (inherited from level 1)
    arxiv: tuple[str, ...] = ()
    children: tuple[str, ...] = ()

    @property
    def domain(self) -> str:
        """The level-1 id this node belongs to."""
        return self.id.split(".", 1)[0]


@dataclass(frozen=True)
class Taxonomy:
    version: int
    nodes: dict[str, Node]        # id -> node, in file order (depth first)
    sha256: str                   # of the file's bytes: provenance for labels and models

    @property
    def ref(self) -> str:
        """`taxonomy@<version>:<hash prefix>`, written next to every label made against it."""
        return f"taxonomy@{self.version}:{self.sha256[:12]}"

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(f"no taxonomy node {node_id!r}") from None

    def level1(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.level == 1]

    def targets(self) -> list[str]:
        """The level-1 ids recall collects, in file order."""
        return [n.id for n in self.level1() if n.target]

    def children(self, node_id: str | None = None) -> list[Node]:
        """Children of a node; of the root (the level-1 nodes) when node_id is None."""
        if node_id is None:
            return self.level1()
        return [self.nodes[c] for c in self.node(node_id).children]

    def path(self, node_id: str) -> tuple[str, ...]:
        """Ids from level 1 down to the node: ("physics", "physics.condensed_matter", …)."""
        node = self.node(node_id)
        out = [node.id]
        while node.parent is not None:
            node = self.nodes[node.parent]
            out.append(node.id)
        return tuple(reversed(out))

    def is_valid_path(self, ids: tuple[str, ...] | list[str]) -> bool:
        """Is `ids` a path from a level-1 node downwards (a prefix of some node's path)?"""
        return bool(ids) and ids[-1] in self.nodes and self.path(ids[-1]) == tuple(ids)

    @functools.cached_property
    def _arxiv_index(self) -> dict[str, str]:
        return {cat: n.id for n in self.nodes.values() for cat in n.arxiv}

    def from_arxiv(self, categories: str) -> str | None:
        """The node of a paper's primary (first) arXiv category: the exact category's node, else
        its archive's ("astro-ph.EP" -> earth_science.planetary_science; "cond-mat.xyz" ->
        physics.condensed_matter). None when neither is in the tree."""
        words = categories.split()
        if not words:
            return None
        primary = words[0]
        index = self._arxiv_index
        if primary in index:
            return index[primary]
        return index.get(primary.split(".", 1)[0])


def load(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    """Read and validate a taxonomy file; every problem is a ConfigError naming the node."""
    data, digest = read_yaml(path, "taxonomy")
    return from_dict(data, sha256=digest, where=str(path))


@functools.lru_cache(maxsize=1)
def default() -> Taxonomy:
    """The taxonomy shipped with the package (loaded once per process)."""
    return load(TAXONOMY_PATH)


def from_dict(data: Any, *, sha256: str = "", where: str = "taxonomy") -> Taxonomy:
    if not isinstance(data, dict) or set(data) != {"version", "domains"}:
        raise ConfigError(f"{where}: expected exactly the keys 'version' and 'domains'")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{where}: version must be a positive integer")
    if not isinstance(data["domains"], list) or not data["domains"]:
        raise ConfigError(f"{where}: 'domains' must be a non-empty list")
    nodes: dict[str, Node] = {}
    arxiv_owner: dict[str, str] = {}

    def add(raw: Any, parent: Node | None) -> str:
        level = 1 if parent is None else parent.level + 1
        here = f"{where}: {'level-1 node' if parent is None else 'child of ' + parent.id}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{here}: a node must be a mapping")
        unknown = set(raw) - _NODE_KEYS
        if unknown:
            raise ConfigError(f"{here} {raw.get('id')!r}: unknown keys {sorted(unknown)}")
        slug = raw.get("id")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise ConfigError(f"{here}: id {slug!r} must be a lower-case slug ([a-z][a-z0-9_]*)")
        node_id = slug if parent is None else f"{parent.id}.{slug}"
        if node_id in nodes:
            raise ConfigError(f"{where}: duplicate node id {node_id!r}")
        if level > MAX_DEPTH:
            raise ConfigError(f"{where}: {node_id!r} is at level {level}; the tree has {MAX_DEPTH} levels")
        for key in ("name", "description"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ConfigError(f"{where}: {node_id!r} needs a non-empty {key}")
        if parent is None:
            if not isinstance(raw.get("target"), bool):
                raise ConfigError(f"{where}: level-1 node {node_id!r} needs target: true or false")
            target = raw["target"]
        else:
            if "target" in raw:
                raise ConfigError(f"{where}: {node_id!r}: target is set on level-1 nodes only (children inherit it)")
            target = parent.target
        arxiv = raw.get("arxiv", [])
        if not isinstance(arxiv, list) or not all(isinstance(a, str) and _ARXIV.match(a) for a in arxiv):
            raise ConfigError(f"{where}: {node_id!r}: arxiv must be a list of categories like 'hep-th' or 'math.AG'")
        for cat in arxiv:
            if cat in arxiv_owner:
                raise ConfigError(f"{where}: arXiv {cat!r} is on both {arxiv_owner[cat]!r} and {node_id!r}")
            arxiv_owner[cat] = node_id
        children_raw = raw.get("children", [])
        if not isinstance(children_raw, list):
            raise ConfigError(f"{where}: {node_id!r}: children must be a list")
        node = Node(node_id, raw["name"].strip(), " ".join(raw["description"].split()), level,
                    parent.id if parent else None, target, tuple(arxiv))
        nodes[node_id] = node
        kids = tuple(add(child, node) for child in children_raw)
        nodes[node_id] = Node(node.id, node.name, node.description, level, node.parent, target, node.arxiv, kids)
        return node_id

    for raw in data["domains"]:
        add(raw, None)
    if not any(n.target for n in nodes.values() if n.level == 1):
        raise ConfigError(f"{where}: no level-1 node is a target domain")
    # keep depth-first file order: a parent before its children
    ordered: dict[str, Node] = {}

    def walk(node_id: str) -> None:
        ordered[node_id] = nodes[node_id]
        for child in nodes[node_id].children:
            walk(child)

    for n in [n for n in nodes.values() if n.level == 1]:
        walk(n.id)
    return Taxonomy(version, ordered, sha256)
