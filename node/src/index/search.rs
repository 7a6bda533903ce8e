//! Search over package names and descriptions.
//!
//! Tokens are stored as `n:<word>` for words of the package name (the namespace, the
//! name, and each kebab word) and `d:<word>` for description words, so one prefix scan
//! finds either and the kind of match feeds the ranking: an exact name first, then name
//! matches, then description matches.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use ferry_protocol::PackageName;
use ferry_protocol::log::{OperatorState, PackageState};
use ferry_protocol::record::OPERATOR_LOG;
use ferry_protocol::target::split_versioned;
use redb::{
    ReadOnlyMultimapTable, ReadOnlyTable, ReadableDatabase, ReadableMultimapTable, ReadableTable,
};
use semver::VersionReq;
use serde::Serialize;

use super::{
    INTERFACES, Index, IndexError, LOG_STATE, RELEASES, ReleaseEntry, TOKENS, VERDICTS, uncbor,
};

/// Most description words indexed per release.
const MAX_DESCRIPTION_TOKENS: usize = 64;
/// Most packages one query word may expand to before the scan stops.
const MAX_CANDIDATES: usize = 10_000;

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    /// Package.
    pub package: String,
    /// Newest version.
    pub version: String,
    /// Its description.
    pub description: Option<String>,
    /// The interfaces that matched `--implements` / `--imports`, with their versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

/// An interface to look for: `ns:pkg/iface` with an optional version requirement
/// (`wasi:http/incoming-handler@0.2` means `^0.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceQuery {
    /// The interface name without version.
    pub name: String,
    /// Versions of the interface that match.
    pub req: Option<VersionReq>,
}

/// Why an interface query does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not an interface query: expected ns:pkg/interface[@version-requirement], e.g. wasi:http/incoming-handler@0.2"
)]
pub struct InterfaceQueryError(String);

impl FromStr for InterfaceQuery {
    type Err = InterfaceQueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InterfaceQueryError(s.to_string());
        let (name, req) = match s.rsplit_once('@') {
            Some((n, r)) => (n, Some(VersionReq::parse(r).map_err(|_| err())?)),
            None => (s, None),
        };
        let (pkg, iface) = name.split_once('/').ok_or_else(err)?;
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.split('-').all(|w| {
                    !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
        };
        let (ns, p) = pkg.split_once(':').ok_or_else(err)?;
        if ![ns, p, iface].into_iter().all(valid_label) {
            return Err(err());
        }
        Ok(InterfaceQuery {
            name: name.to_string(),
            req,
        })
    }
}

impl InterfaceQuery {
    /// Whether a summary entry (`ns:pkg/iface@1.2.3`) matches.
    pub fn matches(&self, item: &str) -> bool {
        let (base, version) = split_versioned(item);
        if base != self.name {
            return false;
        }
        match (&self.req, version) {
            (None, _) => true,
            (Some(req), Some(v)) => req.matches(&v),
            (Some(_), None) => false,
        }
    }
}

/// A search: free text, interface filters, a version requirement.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words to match against names and descriptions.
    pub text: Option<String>,
    /// Only releases that export this interface.
    pub implements: Option<InterfaceQuery>,
    /// Only releases that import this interface.
    pub imports: Option<InterfaceQuery>,
    /// Only versions matching this requirement.
    pub version: Option<VersionReq>,
    /// Most results.
    pub limit: usize,
}

/// The interface index keys of a release: `e:<name>` for exports, `i:<name>` for imports
/// (names without version; unnamed items such as bare functions are not indexed).
pub(super) fn interface_keys(e: &ReleaseEntry) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(s) = &e.summary {
        for (prefix, list) in [("e:", &s.exports), ("i:", &s.imports)] {
            for item in list {
                let (base, _) = split_versioned(item);
                if base.contains('/') {
                    out.insert(format!("{prefix}{base}"));
                }
            }
        }
    }
    out
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// The tokens a release adds to the index.
pub(super) fn tokens_of(package: &PackageName, description: Option<&str>) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    t.insert(format!("n:{package}"));
    t.insert(format!("n:{}", package.namespace()));
    t.insert(format!("n:{}", package.name()));
    for w in package.name().split('-') {
        t.insert(format!("n:{w}"));
    }
    if let Some(d) = description {
        for w in words(d)
            .filter(|w| w.len() > 1)
            .take(MAX_DESCRIPTION_TOKENS)
        {
            t.insert(format!("d:{w}"));
        }
    }
    t
}

impl Index {
    /// Packages matching every word of `query` (by prefix), best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, IndexError> {
        self.find(&SearchQuery {
            text: Some(query.to_string()),
            limit,
            ..SearchQuery::default()
        })
    }

    /// Runs a search: ranks packages by text (exact name, name prefix, then name and
    /// description words), keeps those with a release that passes every filter, and
    /// returns each with its best such release (highest stable version that is not
    /// yanked, deleted or found lying).
    ///
    /// Candidates are judged one at a time, in rank order, inside one read transaction,
    /// and the scan stops at `limit` hits: a query costs about `limit` package lookups
    /// when most candidates pass, not one lookup per release that matches a word or an
    /// interface (measured by `cargo bench -p ferry-node --bench search`).
    pub fn find(&self, q: &SearchQuery) -> Result<Vec<SearchHit>, IndexError> {
        let tx = self.db.begin_read()?;
        let states = tx.open_table(LOG_STATE)?;
        let op = states
            .get(OPERATOR_LOG)?
            .map(|v| uncbor::<OperatorState>(v.value()))
            .transpose()?;
        let view = View {
            releases: tx.open_table(RELEASES)?,
            states,
            verdicts: tx.open_table(VERDICTS)?,
            op,
        };
        let mut out = Vec::new();
        match &q.text {
            Some(t) if !t.trim().is_empty() => {
                let tokens = tx.open_multimap_table(TOKENS)?;
                // Names that are or start with the query outrank every word match, and
                // one prefix scan finds them: only when they are too few does the
                // (costlier) word-by-word ranking run.
                let prefixed = name_prefixed(&tokens, t)?;
                for p in &prefixed {
                    if out.len() >= q.limit {
                        return Ok(out);
                    }
                    out.extend(view.judge(p, q)?);
                }
                let seen: BTreeSet<&String> = prefixed.iter().collect();
                for p in text_ranked(&tokens, t)? {
                    if out.len() >= q.limit {
                        break;
                    }
                    if !seen.contains(&p) {
                        out.extend(view.judge(&p, q)?);
                    }
                }
            }
            _ => {
                // Interface-only queries: the interface index lists (package, version)
                // sorted by package, so each package's entries are adjacent.
                let Some((iq, exports)) = q
                    .implements
                    .as_ref()
                    .map(|i| (i, true))
                    .or(q.imports.as_ref().map(|i| (i, false)))
                else {
                    return Ok(Vec::new());
                };
                let ifaces = tx.open_multimap_table(INTERFACES)?;
                let key = format!("{}{}", if exports { "e:" } else { "i:" }, iq.name);
                let mut last = String::new();
                for v in ifaces.get(key.as_str())? {
                    if out.len() >= q.limit {
                        break;
                    }
                    let v = v?;
                    let (pkg, _) = v.value();
                    if pkg == last {
                        continue;
                    }
                    last = pkg.to_string();
                    out.extend(view.judge(pkg, q)?);
                }
            }
        }
        Ok(out)
    }
}

/// How well a package's name itself matches the whole query: exactly (1000), by its
/// name part (500), or as a prefix of either (200).
fn name_bonus(package: &str, q: &str) -> u32 {
    let name = package.split_once(':').map_or("", |(_, n)| n);
    if package == q {
        1000
    } else if name == q {
        500
    } else if name.starts_with(q) || package.starts_with(q) {
        200
    } else {
        0
    }
}

/// Packages whose name is or starts with the whole query, best first (at most
/// [`MAX_CANDIDATES`] looked at). Found through the `n:<package>` and `n:<name>` tokens,
/// which sort right after the query in the token table.
fn name_prefixed(
    tokens: &ReadOnlyMultimapTable<&str, &str>,
    query: &str,
) -> Result<Vec<String>, IndexError> {
    let q = query.trim().to_lowercase();
    let name_like = q
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':');
    if q.is_empty() || !name_like {
        return Ok(Vec::new());
    }
    let (lo, hi) = (format!("n:{q}"), format!("n:{q}\u{10ffff}"));
    let mut found: BTreeMap<String, u32> = BTreeMap::new();
    let mut looked = 0;
    'scan: for item in tokens.range(lo.as_str()..hi.as_str())? {
        let (_, vals) = item?;
        for v in vals {
            looked += 1;
            if looked > MAX_CANDIDATES {
                break 'scan;
            }
            let v = v?;
            let p = v.value();
            let bonus = name_bonus(p, &q);
            if bonus >= 200 {
                found.insert(p.to_string(), bonus);
            }
        }
    }
    let mut ranked: Vec<(u32, String)> = found.into_iter().map(|(p, b)| (b, p)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(ranked.into_iter().map(|(_, p)| p).collect())
}

/// Packages matching every word of `query`, best first.
fn text_ranked(
    tokens: &ReadOnlyMultimapTable<&str, &str>,
    query: &str,
) -> Result<Vec<String>, IndexError> {
    let q = query.trim().to_lowercase();
    // A whole package name is one word; otherwise split on anything not alphanumeric.
    let qwords: Vec<String> = if q.parse::<PackageName>().is_ok() {
        vec![q.clone()]
    } else {
        words(&q).collect()
    };
    if qwords.is_empty() {
        return Ok(Vec::new());
    }
    // package -> score; a package must match every query word.
    let mut scores: Option<BTreeMap<String, u32>> = None;
    for w in &qwords {
        let mut this: BTreeMap<String, u32> = BTreeMap::new();
        for kind in ["n:", "d:"] {
            let lo = format!("{kind}{w}");
            let hi = format!("{kind}{w}\u{10ffff}");
            'scan: for item in tokens.range(lo.as_str()..hi.as_str())? {
                let (k, vals) = item?;
                let exact = k.value() == lo;
                let s = match (kind, exact) {
                    ("n:", true) => 30,
                    ("n:", false) => 20,
                    (_, true) => 10,
                    _ => 5,
                };
                for v in vals {
                    let e = this.entry(v?.value().to_string()).or_default();
                    *e = (*e).max(s);
                    if this.len() >= MAX_CANDIDATES {
                        break 'scan;
                    }
                }
            }
        }
        scores = Some(match scores {
            None => this,
            Some(prev) => prev
                .into_iter()
                .filter_map(|(p, s)| this.get(&p).map(|t| (p, s + t)))
                .collect(),
        });
    }
    let mut ranked: Vec<(u32, String)> = scores
        .unwrap_or_default()
        .into_iter()
        .map(|(p, s)| (s + name_bonus(&p, &q), p))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(ranked.into_iter().map(|(_, p)| p).collect())
}

/// The tables one search reads, opened once.
struct View {
    releases: ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
    states: ReadOnlyTable<&'static str, &'static [u8]>,
    verdicts: ReadOnlyTable<&'static [u8], &'static str>,
    op: Option<OperatorState>,
}

impl View {
    /// The package's best release that passes every filter of `q`, as a hit.
    fn judge(&self, p: &str, q: &SearchQuery) -> Result<Option<SearchHit>, IndexError> {
        if p.parse::<PackageName>().is_err()
            || self
                .op
                .as_ref()
                .is_some_and(|o| o.deletion(p, None, None).is_some())
        {
            return Ok(None);
        }
        let state: Option<PackageState> =
            self.states.get(p)?.map(|v| uncbor(v.value())).transpose()?;
        let mut best: Option<(ReleaseEntry, Vec<String>)> = None;
        for item in self.releases.range((p, "")..(p, "\u{10ffff}"))? {
            let (_, v) = item?;
            let e: ReleaseEntry = uncbor(v.value())?;
            if q.version.as_ref().is_some_and(|r| !r.matches(&e.version)) {
                continue;
            }
            let Some(matched) = interface_hits(&e, q) else {
                continue;
            };
            let ver = e.version.to_string();
            let yanked = state
                .as_ref()
                .and_then(|s| s.versions.get(&e.version))
                .is_some_and(|v| v.yanked.is_some());
            let deleted = self
                .op
                .as_ref()
                .is_some_and(|o| o.deletion(p, Some(&ver), Some(&e.content)).is_some());
            let lying = self
                .verdicts
                .get(e.record.digest().as_slice())?
                .is_some_and(|v| !v.value().is_empty());
            if yanked || deleted || lying {
                continue;
            }
            let better = best.as_ref().is_none_or(|(b, _)| {
                (e.version.pre.is_empty(), &e.version) > (b.version.pre.is_empty(), &b.version)
            });
            if better {
                best = Some((e, matched));
            }
        }
        Ok(best.map(|(e, mut matched)| {
            matched.sort();
            matched.dedup();
            SearchHit {
                package: p.to_string(),
                version: e.version.to_string(),
                description: e.description,
                interfaces: matched,
            }
        }))
    }
}

/// The interfaces of `e` that the query's `--implements`/`--imports` match, or None
/// when a filter is given and nothing matches it.
fn interface_hits(e: &ReleaseEntry, q: &SearchQuery) -> Option<Vec<String>> {
    let mut matched = Vec::new();
    for (iq, exports) in [(&q.implements, true), (&q.imports, false)] {
        let Some(iq) = iq else { continue };
        let s = e.summary.as_ref()?;
        let list = if exports { &s.exports } else { &s.imports };
        let before = matched.len();
        matched.extend(list.iter().filter(|i| iq.matches(i)).cloned());
        if matched.len() == before {
            return None;
        }
    }
    Some(matched)
}
