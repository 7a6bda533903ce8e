//! Search over package names and descriptions.
//!
//! Tokens are stored as `n:<word>` for words of the package name (the namespace, the
//! name, and each kebab word) and `d:<word>` for description words, so one prefix scan
//! finds either and the kind of match feeds the ranking: an exact name first, then name
//! matches, then description matches.

use std::collections::{BTreeMap, BTreeSet};

use ferry_protocol::PackageName;
use redb::{ReadableDatabase, ReadableMultimapTable};
use serde::Serialize;

use super::{Index, IndexError, TOKENS};

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
        let tx = self.db.begin_read()?;
        let tokens = tx.open_multimap_table(TOKENS)?;
        // package -> score; a package must match every query word.
        let mut scores: Option<BTreeMap<String, u32>> = None;
        for w in &qwords {
            let mut this: BTreeMap<String, u32> = BTreeMap::new();
            for kind in ["n:", "d:"] {
                let lo = format!("{kind}{w}");
                let hi = format!("{kind}{w}\u{10ffff}");
                for item in tokens.range(lo.as_str()..hi.as_str())? {
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
                            break;
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
            .map(|(p, s)| {
                let name = p.split_once(':').map_or("", |(_, n)| n);
                let bonus = if p == q {
                    1000
                } else if name == q {
                    500
                } else if name.starts_with(&q) || p.starts_with(&q) {
                    200
                } else {
                    0
                };
                (s + bonus, p)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let mut out = Vec::new();
        for (_, p) in ranked.into_iter().take(limit) {
            let Ok(name) = p.parse::<PackageName>() else {
                continue;
            };
            if let Some(latest) = self.releases(&name)?.into_iter().max_by(|a, b| {
                // Prefer the newest stable version; fall back to the newest prerelease.
                (a.version.pre.is_empty(), &a.version).cmp(&(b.version.pre.is_empty(), &b.version))
            }) {
                out.push(SearchHit {
                    package: p,
                    version: latest.version.to_string(),
                    description: latest.description,
                });
            }
        }
        Ok(out)
    }
}
