//! Checks over the honest nodes: who holds which release, whether logs agree, whether
//! stored blobs are what their names say, and whether any forgery got in.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ferry_protocol::record::OPERATOR_LOG;
use ferry_protocol::wire::MAX_HEADS;
use ferry_protocol::{ContentId, RecordId, SignedRecord};

use super::{Published, Sim};

impl Sim {
    /// Whether node `n` pins the namespace of `p`.
    pub(super) fn pins(&self, n: usize, p: &Published) -> bool {
        self.plan.nodes[n].pins.contains(&p.namespace)
    }

    /// When `n` held `p` (record indexed and blob stored), if it does.
    pub(super) fn held(&self, n: usize, p: &Published) -> Option<Instant> {
        self.obs.held_at(n, p.record, p.content)
    }

    /// The releases node `n` should hold: every published one it pins.
    pub(super) fn expected(&self, n: usize) -> impl Iterator<Item = &Published> {
        self.published.iter().filter(move |p| self.pins(n, p))
    }

    /// Nodes up now.
    pub(super) fn up(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .filter(|n| n.is_up())
            .map(|n| n.idx)
            .collect()
    }

    /// The head of every log as its writer holds it: the operator log at the operator,
    /// each package log at its namespace's owner.
    fn reference_heads(&self) -> BTreeMap<String, (u64, RecordId)> {
        let mut out = BTreeMap::new();
        let mut writers: Vec<usize> = self.plan.owners.clone();
        writers.push(0);
        writers.sort_unstable();
        writers.dedup();
        for w in writers {
            let Some(node) = self.nodes[w].node() else {
                continue;
            };
            let Ok((heads, _)) = node.index().heads(None, MAX_HEADS as usize) else {
                continue;
            };
            for h in heads {
                let owned = if h.log == OPERATOR_LOG {
                    w == 0
                } else {
                    h.log
                        .split(':')
                        .next()
                        .and_then(|ns| self.plan.namespaces.iter().position(|n| n == ns))
                        .is_some_and(|ns| self.plan.owners[ns] == w)
                };
                if owned {
                    out.insert(h.log, (h.seq, h.id));
                }
            }
        }
        out
    }

    /// Up nodes that do not yet hold every release they pin, or whose head of a log
    /// they follow (the operator log and the package logs of their pins) differs from
    /// the writer's.
    pub(super) fn diverged(&self, nodes: &[usize]) -> Vec<usize> {
        let reference = self.reference_heads();
        let mut out = Vec::new();
        for &n in nodes {
            let Some(node) = self.nodes[n].node() else {
                continue;
            };
            if self.expected(n).any(|p| self.held(n, p).is_none()) {
                out.push(n);
                continue;
            }
            let heads: HashMap<String, (u64, RecordId)> = node
                .index()
                .heads(None, MAX_HEADS as usize)
                .map(|(h, _)| h.into_iter().map(|h| (h.log, (h.seq, h.id))).collect())
                .unwrap_or_default();
            let pins = &self.plan.nodes[n].pins;
            let follows = |log: &str| {
                log == OPERATOR_LOG
                    || log.split(':').next().is_some_and(|ns| {
                        self.plan
                            .namespaces
                            .iter()
                            .position(|x| x == ns)
                            .is_some_and(|i| pins.contains(&i))
                    })
            };
            if reference
                .iter()
                .any(|(log, head)| follows(log) && heads.get(log) != Some(head))
            {
                out.push(n);
            }
        }
        out
    }

    /// Re-hashes every stored blob of every up node; returns (checked, bad).
    pub(super) fn check_blobs(&self) -> (usize, Vec<String>) {
        let mut checked = 0;
        let mut bad = Vec::new();
        for n in self.up() {
            let Some(node) = self.nodes[n].node() else {
                continue;
            };
            for id in node.blobs().list() {
                checked += 1;
                let ok = node
                    .blobs()
                    .path(&id)
                    .and_then(|p| std::fs::read(p).ok())
                    .is_some_and(|b| ContentId::of(&b) == id);
                if !ok {
                    bad.push(format!("node {n}: blob {id} does not hash to its name"));
                }
            }
        }
        (checked, bad)
    }

    /// Forged records known to any up node, and records in any honest log signed by an
    /// adversary key.
    pub(super) fn accepted_forgeries(&self) -> (usize, usize) {
        let ids = self.forgeries.ids();
        let keys = self.forgeries.keys();
        let mut known = 0;
        let mut signed = 0;
        for n in self.up() {
            let Some(node) = self.nodes[n].node() else {
                continue;
            };
            let index = node.index();
            known += ids
                .iter()
                .filter(|id| index.knows(id).unwrap_or(false))
                .count();
            let Ok((heads, _)) = index.heads(None, MAX_HEADS as usize) else {
                continue;
            };
            for h in heads {
                let mut from = 0;
                loop {
                    let page = index.records_from(&h.log, from, 128).unwrap_or_default();
                    if page.is_empty() {
                        break;
                    }
                    from += page.len() as u64;
                    signed += page
                        .iter()
                        .filter_map(|b| SignedRecord::decode(b).ok())
                        .filter(|r| keys.contains(&r.signer))
                        .count();
                }
            }
        }
        (known, signed)
    }

    /// (node, release) pairs whose record or blob is not on disk at `n`: the final
    /// check does not trust the probe alone.
    pub(super) fn missing_on_disk(&self, nodes: &[usize]) -> usize {
        let mut missing = 0;
        for &n in nodes {
            let Some(node) = self.nodes[n].node() else {
                continue;
            };
            for p in self.expected(n) {
                let known = node.index().knows(&p.record).unwrap_or(false);
                if !known || !node.blobs().has(&p.content) {
                    missing += 1;
                }
            }
        }
        missing
    }
}
