"""Scientific-string tagging: find SMILES, protein and nucleotide sequences in text and wrap them
in `<SMILES>…</SMILES>` and `<FASTA>…</FASTA>` (Intern-S1 section 4.1 tags such strings so a
tokenizer can treat them apart from prose).

Goes in: one document's text. Comes out: `TaggedText` with the tagged text and one `SciSpan` per
string found, with offsets into the ORIGINAL text, plus per-outcome counts (`stats`) for the Beam
shell's counters. Pure, deterministic (no randomness, spans sorted by offset) and idempotent: text
inside an existing `<SMILES>…</SMILES>` or `<FASTA>…</FASTA>` pair is never scanned again, so
`tag(tag(x).text).text == tag(x).text`.

Kinds:
- `smiles`: a whitespace-delimited token that RDKit parses (`Chem.MolFromSmiles`) and that carries
  evidence of being SMILES rather than prose (rules below). `canonical` is RDKit's canonical SMILES.
- `dna` / `rna` / `protein`: an inline run of residue letters in prose (one token, or GenBank/UniProt
  style blocks of 10 separated by single spaces). `canonical` is the residues, upper-case, no spaces.
- `fasta`: the sequence lines of a FASTA record (`>header` line, then lines of residues). The span
  and the tag cover the sequence lines only; the header stays prose and is kept in `header`.
  `alphabet` says protein, dna or rna.

All sequences go in `<FASTA>` tags, whatever their alphabet: the tag says "residue string here, tokenize
it as such", and one tag per modality (chemistry vs. biological sequence) is what the downstream
tokenizer needs; the alphabet is in the span record, not in the tag, so the tagged text stays two-tag.

How a SMILES candidate is judged (`judge_smiles`; each rejection has a reason code counted in `stats`):
1. Cheap pre-filter (one regex pass over the text, about as fast as `\S+`): a token that starts
   with an atom and holds only SMILES characters outside brackets (organic-subset atoms B C N O P S
   F Cl Br I, aromatic b c n o p s, digits, `()=#%/\\.:-*`) and bracket atoms `[...]`, preceded by
   whitespace or opening punctuation and followed by whitespace or closing punctuation. Any other
   letter (vowels a/e/i/u, H outside brackets, most metals) ends the token, so ordinary words,
   condensed formulas (CH3COOH, LiFePO4), URLs and most code never reach Python, let alone RDKit.
   Words of aromatic letters (`on`, `no`, `Con`) and tokens of 1-3 bare atoms (`I`, `CO`, `CNS`)
   are skipped by the same regex. `$` (quadruple bond) is left out: it delimits LaTeX math far more
   often; a token after `#` (hex colours, hashtags) is never a candidate.
2. Trim prose punctuation: leading `(`, trailing `.,:` and unbalanced `)`/`]` (SMILES never starts with
   a bond or branch, never ends with a bond or a dot).
3. Reject before RDKit: element+count formulas (`looks_like_formula`), oxidation states (`P(III)`:
   RDKit accepts hypervalent `I`), aromatic letters without a ring digit (an aromatic atom must be
   in a ring), and bare chains that fail the chain rule below.
4. RDKit must parse and sanitise it.
5. Evidence, from the syntax outside brackets (atoms counted from RDKit, `*` dummies excluded):
   - ring digits or aromatic atoms: accepted (rings have >= 3 atoms);
   - bracket atoms: >= 2 atoms, or one charged atom (`[NH4+]`, `[Cl-]`); a lone `[C]` or `[3H]`
     reads as a label or an isotope mark in prose;
   - branches or `=`/`#` bonds: >= `min_smiles_atoms` (3), because two-atom strings with a bond
     are prose notation (`C=O` stretch, `C=C`, big-O `O(N)`, `P(B)`), and without carbon
     >= `min_inorganic_atoms` (5): `P=NP`, `N=N`, `S=O` are notation. `/` `\\` add nothing (stereo
     bonds only matter beside `=`, which counts already; `CO/NO` is a ratio);
   - bare chains (only atoms, `-`, `.`, `/`): >= `min_bare_atoms` (4), no P or B (organophosphorus
     and boron SMILES always have branches), and either a Cl/Br (acronyms are upper-case, so they
     never hold one) or a carbon share >= 0.6 with a `CC` bond. Short upper-case element strings
     are acronyms (CNS, NBS, PBS, SCC, NCCN, PCCC) or words (CO, NO, SPOON); carbon chains (CCCC,
     CCCCO, CCOCC) are SMILES. This rule misses true SMILES of fewer than 4 atoms (CCO, CO, C) and
     hetero-rich short chains (CSSC): in prose nobody can tell them from text.

Sequences: nucleotide runs >= `min_nucleotide` (15) letters of ACGTUN (upper, lower or mixed case:
soft-masking), at least 3 distinct bases, N <= half, T and U not both; protein runs >= `min_protein`
(20) upper-case letters of the 20 amino acids + X, at least `min_protein_distinct` (8) distinct
residues and few common English bigrams (caps prose run together by a PDF extractor). FASTA records
need a header starting right after `>` (Markdown quotes are `> text`) and sequence lines of uniform
case with no J; their thresholds are lower (`fasta_min_residues`, 10) because the header is context.

Cost caps (documented, never silent): only the first `max_doc_chars` characters are scanned (the rest
is kept, untagged) and at most `max_rdkit_calls` candidates per document reach RDKit; either cap sets
`TaggedText.capped` and a `stats` entry. RDKit's own logging is switched off process-wide
(`RDLogger.DisableLog("rdApp.*")`) the first time a SMILES is judged: a corpus produces millions of
parse failures by design.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

VERSION = "scistrings@1"
KINDS = ("smiles", "protein", "dna", "rna", "fasta")
ALPHABETS = ("", "protein", "dna", "rna")
SMILES_OPEN, SMILES_CLOSE = "<SMILES>", "</SMILES>"
FASTA_OPEN, FASTA_CLOSE = "<FASTA>", "</FASTA>"


@dataclass(frozen=True, slots=True)
class SciStringConfig:
    """What the tagger looks for and how much it spends per document.

    Defaults and why:
    - `min_smiles_atoms=3`: a SMILES with branches or explicit bonds but only two heavy atoms
      (`C=O`, `C#N`, `O(N)`, `P(B)`) is bond notation, big-O or probability notation in prose.
    - `min_bare_atoms=4`, `min_bare_carbon_share=0.6`: bare upper-case chains are acronyms or words
      unless long and carbon-rich (see the module docstring); 0.6 leaves out NCCN, SCCS, CSSC.
    - `min_inorganic_atoms=5`: without rings or brackets, a carbon-free string such as `P=NP`,
      `N=N`, `S=O` is notation; inorganic SMILES worth tagging are longer (`O=S(=O)(O)O`).
    - `max_smiles_chars=1000`: real SMILES in papers reach a few hundred characters (peptides,
      natural products); longer tokens are data dumps and would cost RDKit time.
    - `min_nucleotide=15`: primers are 15-30 nt; no English word is a 15-letter run of ACGT.
    - `min_protein=20`, `min_protein_distinct=8`: shorter upper-case runs over 20 letters are
      acronyms and shouted words; a real 20-residue peptide has 10-15 distinct residues.
    - `max_english_bigram_share=0.2`: the share of positions that start one of English's most
      common bigrams (TH, HE, IN, ER, ...) is about 0.25 in English and under 0.1 in proteins.
    - `fasta_min_residues=10`: a header says "sequence follows", so short records count.
    - `max_doc_chars=2_000_000`, `max_rdkit_calls=20_000`: a 2 MB document is a whole book (the
      regex passes are linear: about 0.1 s per MB); RDKit parses and canonicalises a SMILES in
      about 0.2 ms, so a document of nothing but SMILES costs at most about 4 s. Prose documents
      send a few candidates per kilobyte to RDKit.
    """

    smiles: bool = True
    sequences: bool = True
    min_smiles_atoms: int = 3
    min_bare_atoms: int = 4
    min_bare_carbon_share: float = 0.6
    min_inorganic_atoms: int = 5
    max_smiles_chars: int = 1000
    min_nucleotide: int = 15
    min_protein: int = 20
    min_protein_distinct: int = 8
    max_english_bigram_share: float = 0.2
    fasta_min_residues: int = 10
    max_doc_chars: int = 2_000_000
    max_rdkit_calls: int = 20_000

    def __post_init__(self) -> None:
        for name in ("min_smiles_atoms", "min_bare_atoms", "min_inorganic_atoms", "max_smiles_chars", "min_nucleotide",
                     "min_protein", "min_protein_distinct", "fasta_min_residues", "max_doc_chars", "max_rdkit_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("min_bare_carbon_share", "max_english_bigram_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")


DEFAULT_CONFIG = SciStringConfig()


@dataclass(frozen=True, slots=True)
class SciSpan:
    """One scientific string: `text == original[start:end]`."""

    kind: str
    start: int
    end: int
    text: str
    canonical: str          # smiles: RDKit canonical SMILES; sequences: residues, upper-case, no whitespace
    alphabet: str = ""      # protein | dna | rna for sequences and FASTA records; "" for smiles
    header: str = ""        # the FASTA header line without ">", kind fasta only

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        if self.alphabet not in ALPHABETS:
            raise ValueError(f"alphabet must be one of {ALPHABETS}; got {self.alphabet!r}")
        if (self.kind == "smiles") != (self.alphabet == ""):
            raise ValueError(f"a {self.kind} span needs alphabet {'empty' if self.kind == 'smiles' else 'set'}")
        if self.kind in ("protein", "dna", "rna") and self.alphabet != self.kind:
            raise ValueError(f"a {self.kind} span has alphabet {self.alphabet!r}")
        if not 0 <= self.start < self.end or self.end - self.start != len(self.text):
            raise ValueError(f"bad span [{self.start}, {self.end}) for text of length {len(self.text)}")
        if not self.canonical:
            raise ValueError("canonical must not be empty")
        if self.header and self.kind != "fasta":
            raise ValueError("only fasta spans have a header")

    @property
    def tag(self) -> str:
        return "SMILES" if self.kind == "smiles" else "FASTA"


@dataclass(frozen=True, slots=True)
class TaggedText:
    """`text`: the input with every span wrapped in its tag; `spans`: offsets into the input.

    `capped` is True when `max_doc_chars` or `max_rdkit_calls` stopped the scan early (the rest of
    the text is kept, untagged). `stats` counts spans per kind, candidates and rejections per
    reason (`smiles_rejected.<reason>`), for the Beam shell's counters."""

    text: str
    spans: tuple[SciSpan, ...]
    capped: bool = False
    stats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SmilesVerdict:
    """Whether one candidate token is tagged as SMILES, and why (`reason` is a stable code)."""

    accepted: bool
    reason: str
    canonical: str = ""
    atoms: int = 0


# ---- SMILES -------------------------------------------------------------------------------------

# A token of SMILES characters, preceded by the start, whitespace, a quote, `<`, `{`, `,`, `;`, a
# Markdown backtick or table bar, and followed by the end, whitespace or closing punctuation. Outside
# brackets only letters that SMILES allows there; bracket atoms may hold anything but whitespace and
# brackets.
_END = r"""(?=[\s"',;:.!?)\]}>`|]|$)"""
_SMILES_TOKEN = re.compile(
    r"""(?<![^\s"'<{,;`|])(?=[BCNOPSFIbcnops(\[*])"""
    # not a plain word of aromatic letters (on, no, Con, Bob) nor 1-3 bare atoms (I, CO, NO, CNS)
    rf"""(?![BCNOPSFI]?[bcnops]+{_END})(?!(?:Cl|Br|[BCNOPSFI]){{1,3}}{_END})"""
    r"""\(?(?:\[[^\[\]\s]{1,24}\]|Cl|Br|[BCNOPSFIbcnops*])"""      # starts with an atom
    # possessive: a token that runs into a letter is given up at once, never re-scanned shorter
    r"""(?:\[[^\[\]\s]{1,24}\]|Cl|Br|[BCNOPSFIbcnops0-9()=#%/\\.:*\-])*+""" + _END)
_BRACKET = re.compile(r"\[[^\]]*\]")
_BARE_ATOM = re.compile(r"Cl|Br|[BCNOPSFI*]")
_ROMAN_STATE = re.compile(r"\(II+\)")   # P(III), N(II): I-I chains are absurd as SMILES
# Element + count formulas: every token is an element symbol (periodic table) with an optional count,
# optionally in parenthesised groups with counts, e.g. CO2, N2O, P2O5, C6H12O6, Ca(NO3)2, Fe0.95O.
_ELEMENTS = ("H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
             "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm "
             "Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No "
             "Lr").split()
_ELEMENT = "(?:" + "|".join(sorted(_ELEMENTS, key=len, reverse=True)) + ")"
_COUNT = r"(?:\d+(?:\.\d+)?|\.\d+)"
_FORMULA = re.compile(rf"(?:{_ELEMENT}{_COUNT}?|\((?:{_ELEMENT}{_COUNT}?)+\){_COUNT}?)+")

_rdkit = None


def _chem():
    """RDKit's Chem module, its logging switched off (imported on first use)."""
    global _rdkit
    if _rdkit is None:
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        _rdkit = Chem
    return _rdkit


def rdkit_mol(smiles: str):
    """RDKit's molecule for `smiles`, or None when RDKit cannot parse and sanitise it (no log output)."""
    return _chem().MolFromSmiles(smiles)


def rdkit_version() -> str:
    from rdkit import rdBase

    return rdBase.rdkitVersion


def looks_like_formula(token: str) -> bool:
    """An element+count formula (CO2, N2O, P2O5, Ca(NO3)2, Ba0.95La0.05FeO3) rather than SMILES.

    A token written only in element symbols with counts is a formula when a count cannot be a
    SMILES ring closure: a decimal, or a digit that occurs an odd number of times (ring bonds open
    and close in pairs). `C1CCCCC1` stays SMILES; `CO2` is a formula."""
    if not any(ch.isdigit() for ch in token) or _FORMULA.fullmatch(token) is None:
        return False
    if "." in token:
        return True
    digits = [ch for ch in token if ch.isdigit()]
    return any(digits.count(d) % 2 for d in set(digits))


def trim_candidate(token: str) -> tuple[int, int]:
    """(start, end) of the SMILES part of a token, prose punctuation removed: leading `(` and bond or
    dot characters; trailing `.,:`, bond characters, `(` and unbalanced `)` / `]`."""
    i, j = 0, len(token)
    while i < j and token[i] in "(.:=#-/\\%":
        i += 1
    while j > i:
        ch = token[j - 1]
        if ch in ".,:=#-/\\%(":
            j -= 1
        elif ch == ")" and token.count("(", i, j) < token.count(")", i, j):
            j -= 1
        elif ch == "]" and token.count("[", i, j) < token.count("]", i, j):
            j -= 1
        else:
            break
    return i, j


def judge_smiles(candidate: str, config: SciStringConfig = DEFAULT_CONFIG) -> SmilesVerdict:
    """Decide whether one trimmed token is a SMILES string in prose (rules: module docstring)."""
    if not candidate:
        return SmilesVerdict(False, "empty")
    if len(candidate) > config.max_smiles_chars:
        return SmilesVerdict(False, "too_long")
    outside = _BRACKET.sub("", candidate)
    if "[" in outside or "]" in outside:
        return SmilesVerdict(False, "unbalanced_bracket")
    if looks_like_formula(candidate):
        return SmilesVerdict(False, "formula")
    if _ROMAN_STATE.search(candidate):
        return SmilesVerdict(False, "oxidation_state")
    ring = any(ch.isdigit() or ch == "%" for ch in outside)
    aromatic = any(ch in "bcnops" for ch in outside)
    if aromatic and not ring:
        return SmilesVerdict(False, "aromatic_without_ring")
    bracket = len(outside) != len(candidate)
    branch = "(" in outside
    bond = "=" in outside or "#" in outside
    if not (ring or aromatic or bracket or branch or bond):
        atoms = [a for a in _BARE_ATOM.findall(outside) if a != "*"]
        if len(atoms) < config.min_bare_atoms:
            return SmilesVerdict(False, "bare_too_short", atoms=len(atoms))
        if "P" in atoms or "B" in atoms:
            return SmilesVerdict(False, "bare_acronym_like", atoms=len(atoms))
        halogen = "Cl" in atoms or "Br" in atoms
        carbon_chain = atoms.count("C") / len(atoms) >= config.min_bare_carbon_share and "CC" in outside
        if not (halogen or carbon_chain):
            return SmilesVerdict(False, "bare_acronym_like", atoms=len(atoms))
    if not any(ch.isupper() or ch in "bcnops" for ch in candidate):
        return SmilesVerdict(False, "no_atoms")
    chem = _chem()
    mol = chem.MolFromSmiles(candidate)
    if mol is None:
        return SmilesVerdict(False, "rdkit_invalid")
    atoms = sum(1 for atom in mol.GetAtoms() if atom.GetAtomicNum() > 0)
    canonical = chem.MolToSmiles(mol)
    if ring or aromatic:
        reason = "ok_ring"
    elif bracket:
        if atoms < 2 and not re.search(r"\[[^\]]*[+\-][^\]]*\]", candidate):
            return SmilesVerdict(False, "too_few_atoms", canonical, atoms)
        reason = "ok_bracket"
    elif branch or bond:
        if atoms < config.min_smiles_atoms:
            return SmilesVerdict(False, "too_few_atoms", canonical, atoms)
        if atoms < config.min_inorganic_atoms and not any(a.GetAtomicNum() == 6 for a in mol.GetAtoms()):
            return SmilesVerdict(False, "inorganic_short", canonical, atoms)
        reason = "ok_syntax"
    else:
        reason = "ok_chain"
    if atoms == 0:
        return SmilesVerdict(False, "no_atoms", canonical, atoms)
    return SmilesVerdict(True, reason, canonical, atoms)


def smiles_candidates(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of every trimmed SMILES-shaped token in text[start:end] (the regex pre-filter)."""
    for m in _SMILES_TOKEN.finditer(text, start, len(text) if end is None else end):
        i, j = trim_candidate(m.group())
        if j > i:
            yield m.start() + i, m.start() + j


# ---- sequences ----------------------------------------------------------------------------------

# Runs of residue letters: one token of >= 10 letters, optionally followed by more blocks separated by
# single spaces (GenBank/UniProt print sequences in blocks of 10); `_segments` checks the grouping.
_NUCLEOTIDE_RUN = re.compile(r"(?<![A-Za-z0-9_])[ACGTUNacgtun]{10,}(?: [ACGTUNacgtun]{10,})*(?: [ACGTUNacgtun]{1,9})?"
                             r"(?![A-Za-z0-9_])")
_PROTEIN_RUN = re.compile(r"(?<![A-Za-z0-9_])[ACDEFGHIKLMNPQRSTVWYX]{10,}(?: [ACDEFGHIKLMNPQRSTVWYX]{10,})*"
                          r"(?: [ACDEFGHIKLMNPQRSTVWYX]{1,9})?(?![A-Za-z0-9_])")
# Cheap gate: no run of 10 letters from any residue alphabet, no inline sequence (most prose).
_SEQUENCE_HINT = re.compile(r"[ACGTUNacgtunDEFHIKLMPQRSVWYX]{10}")
_ENGLISH_BIGRAMS = frozenset("TH HE IN ER AN RE ND ON EN AT OU ED HA TO OR IT IS HI ES NG ST AR TE SE ME".split())
_PROTEIN_LETTERS = set("ACDEFGHIKLMNPQRSTVWYX")
_FASTA_PROTEIN = set("ACDEFGHIKLMNPQRSTVWYBZXUO*-")
_FASTA_NUCLEOTIDE = set("ACGTUNRYKMSWBDHV-*")


def english_bigram_share(residues: str) -> float:
    """Share of positions that start one of English's most common bigrams (upper-case input)."""
    if len(residues) < 2:
        return 0.0
    return sum(1 for k in range(len(residues) - 1) if residues[k:k + 2] in _ENGLISH_BIGRAMS) / (len(residues) - 1)


def _segments(run: str, offset: int) -> Iterator[list[tuple[int, int]]]:
    """Candidate sequences in a run, as lists of (start, end) groups: a block-printed sequence
    (every group but the last exactly 10 letters) first; when that is not one, each group alone."""
    groups: list[tuple[int, int]] = []
    pos = 0
    for word in run.split(" "):
        groups.append((offset + pos, offset + pos + len(word)))
        pos += len(word) + 1
    i = 0
    while i < len(groups):
        j = i
        while j + 1 < len(groups) and groups[j][1] - groups[j][0] == 10:
            j += 1
        yield groups[i:j + 1]
        i = j + 1


def nucleotide_alphabet(residues: str, config: SciStringConfig, *, min_length: int) -> str:
    """"dna", "rna" or "" (not a nucleotide sequence) for upper-case residues."""
    if len(residues) < min_length:
        return ""
    counts = {b: residues.count(b) for b in "ACGTUN"}
    if counts["T"] and counts["U"]:
        return ""
    if sum(1 for b in "ACGTU" if counts[b]) < 3 or counts["N"] * 2 > len(residues):
        return ""
    return "rna" if counts["U"] else "dna"


def protein_ok(residues: str, config: SciStringConfig, *, min_length: int, min_distinct: int) -> bool:
    """Upper-case residues that read as a protein rather than caps prose or a low-complexity run."""
    return (len(residues) >= min_length and len(set(residues) - {"X", "*", "-"}) >= min_distinct
            and english_bigram_share(residues) <= config.max_english_bigram_share)


def _inline_sequences(text: str, limit: int, config: SciStringConfig, claimed: _Claimed) -> list[SciSpan]:
    """Inline nucleotide then protein runs outside `claimed` (which they are added to)."""
    spans: list[SciSpan] = []

    def scan(pattern: re.Pattern[str], judge) -> None:
        for m in pattern.finditer(text, 0, limit):
            for segment in _segments(m.group(), m.start()):
                tries = [segment] + ([[g] for g in segment] if len(segment) > 1 else [])
                for groups in tries:
                    start, end = groups[0][0], groups[-1][1]
                    if claimed.overlaps(start, end):
                        continue
                    residues = "".join(text[s:e] for s, e in groups)
                    kind = judge(residues)
                    if kind:
                        spans.append(SciSpan(kind, start, end, text[start:end], residues.upper(), kind))
                        claimed.add(start, end)
                        break

    scan(_NUCLEOTIDE_RUN, lambda r: nucleotide_alphabet(r.upper(), config, min_length=config.min_nucleotide))

    def protein(residues: str) -> str:
        if set(residues) <= set("ACGTUN"):
            return ""           # a nucleotide run below min_nucleotide is not a protein either
        ok = protein_ok(residues, config, min_length=config.min_protein, min_distinct=config.min_protein_distinct)
        return "protein" if ok else ""

    scan(_PROTEIN_RUN, protein)
    return spans


_FASTA_HEADER = re.compile(r"(?m)^>(?=\S)([^\n]*)\n")
_FASTA_LINE = re.compile(r"[A-Za-z*\-]+")


def _fasta_records(text: str, limit: int, config: SciStringConfig) -> list[SciSpan]:
    spans: list[SciSpan] = []
    for m in _FASTA_HEADER.finditer(text, 0, limit):
        pos = m.end()
        first = last = -1
        residues: list[str] = []
        while pos < limit:
            eol = text.find("\n", pos, limit)
            eol = limit if eol < 0 else eol
            line = text[pos:eol].rstrip(" \t\r")
            if not line or _FASTA_LINE.fullmatch(line) is None or not (line.isupper() or line.islower()
                                                                      or not any(c.isalpha() for c in line)):
                break
            if first < 0:
                first = pos
            last = pos + len(line)
            residues.append(line.upper())
            pos = eol + 1
        seq = "".join(residues)
        if first < 0 or len(seq) < config.fasta_min_residues or "J" in seq:
            continue
        letters = seq.replace("-", "").replace("*", "")
        nucleotide = sum(1 for c in letters if c in "ACGTUN")
        if set(seq) <= _FASTA_NUCLEOTIDE and nucleotide >= 0.9 * len(letters):
            alphabet = "rna" if "U" in letters and "T" not in letters else "dna"
        elif set(seq) <= _FASTA_PROTEIN and protein_ok(letters, config, min_length=config.fasta_min_residues,
                                                        min_distinct=min(config.min_protein_distinct, 5)):
            alphabet = "protein"
        else:
            continue
        spans.append(SciSpan("fasta", first, last, text[first:last], seq, alphabet, header=m.group(1).rstrip("\r")))
    return spans


# ---- tagging ------------------------------------------------------------------------------------

_EXISTING = re.compile(r"<SMILES>.*?</SMILES>|<FASTA>.*?</FASTA>", re.S)


class _Claimed:
    """Disjoint [start, end) ranges already taken, sorted; overlap tests in O(log n)."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted(ranges):
            self.add(start, end)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and self.ends[i] > start:
            return True
        return i + 1 < len(self.starts) and self.starts[i + 1] < end

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def find_spans(text: str, config: SciStringConfig = DEFAULT_CONFIG) -> tuple[tuple[SciSpan, ...], bool, dict[str, int]]:
    """(spans sorted by start, capped, stats) for `text`; text inside existing tags is skipped."""
    stats: dict[str, int] = {}
    limit = min(len(text), config.max_doc_chars)
    capped = limit < len(text)
    if capped:
        stats["capped_doc_chars"] = 1
    claimed = _Claimed((m.start(), m.end()) for m in _EXISTING.finditer(text))
    if claimed.starts:
        stats["already_tagged"] = len(claimed.starts)
    spans: list[SciSpan] = []
    if config.sequences:
        if ">" in text:
            for span in _fasta_records(text, limit, config):
                if not claimed.overlaps(span.start, span.end):
                    spans.append(span)
                    claimed.add(span.start, span.end)
        if _SEQUENCE_HINT.search(text, 0, limit):
            spans.extend(_inline_sequences(text, limit, config, claimed))
    if config.smiles:
        calls = 0
        for start, end in smiles_candidates(text, 0, limit):
            if claimed.overlaps(start, end):
                continue
            stats["smiles_candidates"] = stats.get("smiles_candidates", 0) + 1
            if calls >= config.max_rdkit_calls:
                stats["capped_rdkit_calls"] = 1
                capped = True
                break
            verdict = judge_smiles(text[start:end], config)
            calls += verdict.reason == "rdkit_invalid" or bool(verdict.canonical)
            if verdict.accepted:
                spans.append(SciSpan("smiles", start, end, text[start:end], verdict.canonical))
            else:
                key = f"smiles_rejected.{verdict.reason}"
                stats[key] = stats.get(key, 0) + 1
    spans.sort(key=lambda s: (s.start, s.end))
    for span in spans:
        stats[span.kind] = stats.get(span.kind, 0) + 1
    return tuple(spans), capped, stats


def render(text: str, spans: tuple[SciSpan, ...] | list[SciSpan]) -> str:
    """`text` with each span wrapped in `<SMILES>`/`<FASTA>` (spans must not overlap)."""
    out: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < pos:
            raise ValueError(f"spans overlap at {span.start}")
        if text[span.start:span.end] != span.text:
            raise ValueError(f"span text {span.text!r} is not text[{span.start}:{span.end}]")
        out.append(text[pos:span.start])
        out.append(f"<{span.tag}>{span.text}</{span.tag}>")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def tag(text: str, config: SciStringConfig = DEFAULT_CONFIG) -> TaggedText:
    """Find every scientific string in `text` and wrap it in its tag (see the module docstring)."""
    spans, capped, stats = find_spans(text, config)
    return TaggedText(render(text, spans), spans, capped, stats)


def tagged_offset(spans: tuple[SciSpan, ...] | list[SciSpan], offset: int) -> int:
    """Where offset `offset` of the original text lands in `render(text, spans)`: for carrying other
    offsets (page spans of a merged document) over to the tagged text. An offset inside a span moves
    past its opening tag; one at a span's start stays before it."""
    shift = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= offset:
            shift += len(span.tag) * 2 + 5          # "<TAG>" and "</TAG>"
        elif span.start < offset:
            shift += len(span.tag) + 2
        else:
            break
    return offset + shift


def strip_tags(text: str) -> str:
    """The inverse of `tag` on its output: the tags removed, nothing else changed."""
    return re.sub(r"</?(?:SMILES|FASTA)>", "", text)
