"""Domain line dedup: lines that recur across many pages of one URL domain are boilerplate.

Navigation bars, footers, cookie notices and "share this" rows are printed by a site's template
on most of its pages; the article text is not. A line (compared after `line_key` normalisation)
found on at least `min_share` of one domain's pages is removed from every page of that domain.

Pure core here (`url_domain`, `line_key`, `required_pages`, `boilerplate_lines`, `strip_lines`);
Beam shell `DomainLineDedup` at the bottom (it lives in this module, not `transforms`, to keep
this stage in one file).

In:  PCollection of ``(url, text)``.
Out: ``(url, text_after, removed_lines)`` for EVERY input, in no order. Nothing is dropped: a page
     whose every line was boilerplate comes out as ``("…", "", n)``; the caller decides.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics

from scicurate.config import ConfigError

NAMESPACE = "dedup_lines"
_DIGITS = re.compile(r"\d+")
# Value of the per-domain page count in the grouped (key, count) stream: `line_key` never returns
# "" for a line that is counted, so "" cannot collide with a line.
_PAGE_COUNT = ""


@dataclass(frozen=True, slots=True)
class LineDedupConfig:
    """Thresholds of domain line dedup.

    - `min_share=0.3`: a line on >= 30% of a domain's pages is boilerplate. A template's nav bar
      and footer sit on ~100% of the pages it renders, but a site often has several templates
      (blog, docs, shop, forum), each rendering only part of the site; 30% still catches a
      template that renders a third of the pages. Content lines rarely repeat that widely: a
      sentence quoted on a few articles of a 20-page domain is on 10-15%. The count needed is
      ceil(min_share * pages) with min_share read as the decimal it was written as (0.3 of 10
      pages is exactly 3, not 3.0000000000000004), and never below 2: a line on one page does
      not recur. At the floor of 5 pages this means 2 of 5 pages.
    - `min_pages=5`: domains with fewer pages are left untouched. A share of 2 or 3 pages says
      nothing (two articles quoting one sentence would lose it); at 5 pages a removed line is on
      at least 2 of them.
    - `min_line_chars=1`, `max_line_chars=300`: line length (of the `line_key`) for a line to be
      counted at all. Longer lines are paragraphs of content, never boilerplate, even when a site
      repeats one (an abstract shown on a listing and on its article page).
    - `normalise=True`: lines compare after NFKC, casefold, whitespace collapse and every digit
      run -> "0", so "© 2021 Acme" / "© 2023 Acme" and "Page 3 of 9" / "Page 4 of 12" match.
      False compares lines exactly, surrounding whitespace aside.
    - `join_shards=16`: pages join their domain's boilerplate set on (domain, shard of the URL),
      the set being copied to every shard of a domain that has one. A group then holds about
      1/16 of one domain's pages rather than all of them (Beam's CoGroupByKey materialises each
      group's values as lists); 1 joins by domain alone.
    """

    min_share: float = 0.3
    min_pages: int = 5
    min_line_chars: int = 1
    max_line_chars: int = 300
    normalise: bool = True
    join_shards: int = 16

    def __post_init__(self) -> None:
        def is_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if isinstance(self.min_share, bool) or not isinstance(self.min_share, (int, float)) \
                or not 0.0 < self.min_share <= 1.0:
            raise ConfigError(f"min_share must be a number in (0, 1]; got {self.min_share!r}")
        if not is_int(self.min_pages) or self.min_pages < 2:
            raise ConfigError(f"min_pages must be an int >= 2 (a share of one page means nothing); "
                              f"got {self.min_pages!r}")
        if not is_int(self.min_line_chars) or self.min_line_chars < 1:
            raise ConfigError(f"min_line_chars must be an int >= 1; got {self.min_line_chars!r}")
        if not is_int(self.max_line_chars) or self.max_line_chars < self.min_line_chars:
            raise ConfigError(f"max_line_chars must be an int >= min_line_chars "
                              f"({self.min_line_chars}); got {self.max_line_chars!r}")
        if not isinstance(self.normalise, bool):
            raise ConfigError(f"normalise must be a bool; got {self.normalise!r}")
        if not is_int(self.join_shards) or self.join_shards < 1:
            raise ConfigError(f"join_shards must be an int >= 1; got {self.join_shards!r}")


def url_domain(url: str) -> str:
    """The domain a page's lines are pooled under: the URL's host, lowercased, without port,
    userinfo, a trailing "." or one leading "www.". A URL without a scheme ("example.com/a") is
    read as a host. "" when there is no host (or the URL cannot be parsed).

    Registered-domain-ish only: it does NOT use the public suffix list (no external package), so
    `a.example.co.uk` and `b.example.co.uk` are separate domains, as are `blog.x.org` and `x.org`.
    Sub-sites usually have their own template anyway. Internationalised hosts are not converted
    to or from punycode.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be str, got {type(url).__name__}")
    text = url.strip()
    try:
        parts = urlsplit(text)
        if not parts.netloc and "://" not in text:
            parts = urlsplit("//" + text)
        host = parts.hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    host = host.removeprefix("www.")
    return host


def line_key(line: str, config: LineDedupConfig) -> str:
    """What a line is compared by. With `normalise`: NFKC, casefold, whitespace runs -> one
    space (ends stripped), digit runs -> "0"; without: the line stripped of surrounding
    whitespace. "" for a line that is never counted nor removed: blank, or a key shorter than
    `min_line_chars` or longer than `max_line_chars`."""
    if config.normalise:
        key = " ".join(unicodedata.normalize("NFKC", line).casefold().split())
        key = _DIGITS.sub("0", key)
    else:
        key = line.strip()
    if not config.min_line_chars <= len(key) <= config.max_line_chars:
        return ""
    return key


def page_line_keys(text: str, config: LineDedupConfig) -> set[str]:
    """The distinct counted line keys of one page (lines split on "\\n")."""
    keys = {line_key(line, config) for line in text.split("\n")}
    keys.discard("")
    return keys


def required_pages(n_pages: int, config: LineDedupConfig) -> int:
    """Pages a line must be on to be boilerplate in a domain of `n_pages` pages:
    max(2, ceil(min_share * n_pages)), computed exactly (see `LineDedupConfig`)."""
    return max(2, math.ceil(Fraction(repr(config.min_share)) * n_pages))


def is_boilerplate(line_pages: int, n_pages: int, config: LineDedupConfig) -> bool:
    """A line on `line_pages` of a domain's `n_pages` pages is boilerplate."""
    return n_pages >= config.min_pages and line_pages >= required_pages(n_pages, config)


def boilerplate_lines(page_line_sets: Iterable[set[str]], n_pages: int, config: LineDedupConfig) -> set[str]:
    """Keys found in enough of one domain's pages. `page_line_sets` holds each page's distinct
    line keys (`page_line_keys`; "" ignored); `n_pages` is the domain's page count, pages
    without a counted line included. Empty when `n_pages < min_pages`."""
    if n_pages < config.min_pages:
        return set()
    counts: Counter[str] = Counter()
    for keys in page_line_sets:
        counts.update(set(keys))
    counts.pop("", None)
    return {key for key, count in counts.items() if is_boilerplate(count, n_pages, config)}


def strip_lines(text: str, boilerplate: set[str] | frozenset[str], config: LineDedupConfig) -> tuple[str, int]:
    """``(text without its boilerplate lines, lines removed)``; every occurrence counts. Lines
    whose key is "" (blank, too short, too long) are never removed, whatever `boilerplate` holds.

    Nothing removed: the text comes back unchanged. Otherwise the kept lines are joined by
    "\\n" (each as it was, "\\r" included), runs of blank lines collapse to one, leading and
    trailing blank lines go, and a final line break is kept if the text had one and anything is
    left. A page that was all boilerplate becomes "".
    """
    if not boilerplate:
        return text, 0
    lines = text.split("\n")
    trailing_break = text.endswith("\n")
    if trailing_break:
        lines.pop()
    kept: list[str] = []
    removed = 0
    for line in lines:
        key = line_key(line, config)
        if key and key in boilerplate:
            removed += 1
        else:
            kept.append(line)
    if not removed:
        return text, 0
    out: list[str] = []
    for line in kept:
        blank = not line.strip()
        if blank and (not out or not out[-1].strip()):
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    result = "\n".join(out)
    if result and trailing_break:
        result += "\n"
    return result, removed


def url_shard(url: str, shards: int) -> int:
    """Stable shard of a URL in [0, shards): blake2b, so every worker and rerun agrees."""
    return int.from_bytes(hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest(), "big") % shards


# ---- Beam shell ------------------------------------------------------------------------------


def _tuple_domain(page) -> str:
    return url_domain(page[0])


def _tuple_text(page) -> str:
    return page[1]


def _tuple_key(page) -> str:
    return page[0]


def _tuple_apply(page, text_after: str, removed: int):
    return page[0], text_after, removed


def _checked_text(page, text_of) -> str:
    text = text_of(page)
    if not isinstance(text, str):
        raise TypeError(f"page text must be str, got {type(text).__name__} for {page!r:.80}")
    return text


def _line_counts(domain: str, page, config: LineDedupConfig = LineDedupConfig(),
                 text_of=_tuple_text) -> Iterator[tuple[tuple[str, str], int]]:
    # `config` has a default only because FlatMapTuple requires one for extra arguments.
    if domain:
        for key in page_line_keys(_checked_text(page, text_of), config):
            yield (domain, key), 1


class _FindBoilerplate(beam.DoFn):
    """(domain, [(key, pages)…, ("", n_pages)]) -> (domain, sorted boilerplate keys), if any.

    Iterates the grouped values twice (page count, then lines) without collecting them: Beam's
    GroupByKey values are re-iterable and, on distributed runners, paged in lazily."""

    def __init__(self, config: LineDedupConfig) -> None:
        self.config = config
        self.domains = Metrics.counter(NAMESPACE, "domains_with_boilerplate")

    def process(self, element):
        domain, values = element
        n_pages = next((count for key, count in values if key == _PAGE_COUNT), 0)
        if n_pages < self.config.min_pages:
            return
        keys = sorted(key for key, count in values
                      if key != _PAGE_COUNT and is_boilerplate(count, n_pages, self.config))
        if keys:
            self.domains.inc()
            yield domain, tuple(keys)


class _StripPages(beam.DoFn):
    """((domain, shard), {"boilerplate": [keys…], "pages": [page…]}) -> apply(page, text_after, removed)."""

    def __init__(self, config: LineDedupConfig, text_of=_tuple_text, apply=_tuple_apply) -> None:
        self.config = config
        self.text_of = text_of
        self.apply = apply
        self.pages = Metrics.counter(NAMESPACE, "pages")
        self.lines_removed = Metrics.counter(NAMESPACE, "lines_removed")

    def process(self, element):
        _key, grouped = element
        boilerplate: set[str] = set()
        for keys in grouped["boilerplate"]:
            boilerplate.update(keys)
        for page in grouped["pages"]:
            after, removed = strip_lines(_checked_text(page, self.text_of), boilerplate, self.config)
            self.pages.inc()
            self.lines_removed.inc(removed)
            yield self.apply(page, after, removed)


class DomainLineDedup(beam.PTransform):
    """``(url, text)`` -> ``(url, text_after, removed_lines)`` for every input page.

    Stages (shapes):
      KeyByDomain        -> (domain, (url, text)); domain = `url_domain(url)`
      CountLinePages     -> ((domain, line_key), pages with that line), one count per DISTINCT
                            key of a page, combiner-lifted; counts < 2 dropped (never boilerplate)
      CountPages         -> (domain, pages), domains below `min_pages` dropped
      FindBoilerplate    -> (domain, sorted keys) for domains with any (`is_boilerplate`)
      JoinPages          -> CoGroupByKey on (domain, url shard) with the set copied to each shard
      StripPages         -> (url, text_after, removed)

    Memory: the FindBoilerplate group is read as a stream (two passes), never held. A StripPages
    group holds one domain's boilerplate set plus ~1/`join_shards` of that domain's pages. The set
    is small by construction: each of its keys is on >= min_share * n of the domain's n pages, and
    all keys together are on at most n * L page-lines (L = distinct lines per page), so it has at
    most L / min_share keys (~330 for pages of 100 lines at 0.3), however large the domain.
    Pages without a host (`url_domain` == "") and domains under `min_pages` pass through
    unchanged with 0 removed.

    Counters: ``dedup_lines/pages`` (pages output = pages input), ``dedup_lines/lines_removed``,
    ``dedup_lines/domains_with_boilerplate``.

    Records other than ``(url, text)`` pairs: pass ``domain(record) -> str``, ``text(record) ->
    str``, ``key(record) -> str`` (a stable id, used to shard the join) and ``apply(record,
    text_after, removed) -> record``; the records then travel through the join themselves and no
    join back to them is needed.
    """

    def __init__(self, config: LineDedupConfig | None = None, label: str | None = None, *,
                 domain=_tuple_domain, text=_tuple_text, key=_tuple_key, apply=_tuple_apply) -> None:
        super().__init__(label)
        self.config = config if config is not None else LineDedupConfig()
        self.domain_of, self.text_of, self.key_of, self.apply = domain, text, key, apply

    def expand(self, pages):
        config = self.config
        shards = config.join_shards
        domain_of, text_of, key_of = self.domain_of, self.text_of, self.key_of
        keyed = pages | "KeyByDomain" >> beam.Map(lambda page: (domain_of(page), page))
        line_counts = (
            keyed
            | "DistinctLineKeys" >> beam.FlatMapTuple(_line_counts, config, text_of)
            | "CountLinePages" >> beam.CombinePerKey(sum)
            | "DropSingleLines" >> beam.Filter(lambda kv: kv[1] >= 2)
            | "LineByDomain" >> beam.MapTuple(lambda domain_key, count: (domain_key[0], (domain_key[1], count)))
        )
        page_counts = (
            keyed
            | "PageOnes" >> beam.FlatMapTuple(lambda domain, _page: [(domain, 1)] if domain else [])
            | "CountPages" >> beam.CombinePerKey(sum)
            | "DropSmallDomains" >> beam.Filter(lambda kv: kv[1] >= config.min_pages)
            | "TagPageCount" >> beam.MapTuple(lambda domain, n: (domain, (_PAGE_COUNT, n)))
        )
        boilerplate = (
            (line_counts, page_counts)
            | "CountsTogether" >> beam.Flatten()
            | "GroupByDomain" >> beam.GroupByKey()
            | "FindBoilerplate" >> beam.ParDo(_FindBoilerplate(config))
            | "CopyToShards" >> beam.FlatMapTuple(
                lambda domain, keys: (((domain, shard), keys) for shard in range(shards)))
        )
        sharded_pages = keyed | "KeyByDomainShard" >> beam.MapTuple(
            lambda domain, page: ((domain, url_shard(key_of(page), shards)), page))
        return (
            {"boilerplate": boilerplate, "pages": sharded_pages}
            | "JoinPages" >> beam.CoGroupByKey()
            | "StripPages" >> beam.ParDo(_StripPages(config, text_of, self.apply))
        )
