//! The catalogue of crafted records: what each attack sends, over which channel, and
//! which rule of the protocol must refuse it.
//!
//! Every attack targets the log of `demo:victim` (or the operator log) as the honest
//! nodes hold it, at the exact position a valid record would take, so that the rule
//! named is the only thing wrong with it.

use ferry_node::libp2p::gossipsub::IdentTopic;
use ferry_protocol::record::{Body, Perm, Target};
use ferry_protocol::{Keypair, NetworkId, RecordId, SignedRecord};

use super::craft::{At, forged, now_ms, release, tampered};
use crate::integration::support::small_component;

/// The package every attack is aimed at.
pub const VICTIM: &str = "demo:victim";

/// The keys in play. Only `owner` is honest; the test holds it to check that its
/// records cannot be altered and to replay them across networks.
pub struct Keys {
    /// Operator of the network and owner of `demo` (H1's publisher key).
    pub owner: Keypair,
    /// A key nobody ever granted anything.
    pub rogue: Keypair,
    /// Was granted `release` on the victim, then revoked.
    pub revoked: Keypair,
    /// Holds only `yank` on the victim.
    pub yanker: Keypair,
    /// Holds `release` on the victim: a legitimate publisher turned hostile.
    pub granted: Keypair,
    /// Was an owner of `demo`, then removed by the operator.
    pub ex_owner: Keypair,
}

/// What the honest nodes hold when the attacks start.
pub struct Scene {
    /// The network.
    pub network: NetworkId,
    /// The keys.
    pub keys: Keys,
    /// The victim's log, record by record, as an honest node served it by sync.
    pub victim: Vec<SignedRecord>,
    /// Head of the operator log.
    pub operator: (u64, RecordId),
    /// Gossip topic of the operator log.
    pub operator_topic: IdentTopic,
    /// Gossip topic of `demo`.
    pub demo_topic: IdentTopic,
}

/// One crafted gossip message.
pub struct Gossip {
    /// Short name, printed.
    pub name: &'static str,
    /// A fragment of the refusal every honest node must log; `None` when the record
    /// is refused silently (a duplicate).
    pub rule: Option<&'static str>,
    /// The topic it is published on.
    pub topic: IdentTopic,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whether the sender must lose score for it.
    pub penalized: bool,
}

impl Scene {
    pub(super) fn head(&self) -> (u64, RecordId) {
        let last = self.victim.last().expect("the victim's log");
        (last.record.seq, last.id)
    }

    /// The next position of the victim's log.
    pub(super) fn next(&self) -> At {
        let (seq, id) = self.head();
        At {
            network: Some(self.network),
            log: VICTIM.into(),
            seq: seq + 1,
            prev: Some(id),
            time_ms: now_ms(),
        }
    }

    /// The next position of the operator log.
    fn next_operator(&self) -> At {
        At {
            network: Some(self.network),
            log: "operator".into(),
            seq: self.operator.0 + 1,
            prev: Some(self.operator.1),
            time_ms: now_ms(),
        }
    }

    /// The victim's record whose body satisfies `f`.
    pub fn find(&self, f: impl Fn(&Body) -> bool) -> &SignedRecord {
        self.victim
            .iter()
            .find(|r| f(&r.record.body))
            .expect("a record of the victim's log")
    }

    pub(super) fn release_record(&self) -> &SignedRecord {
        self.find(|b| matches!(b, Body::Release(_)))
    }

    pub(super) fn old_grant(&self) -> &SignedRecord {
        let revoked = self.keys.revoked.public();
        self.find(|b| matches!(b, Body::Grant { key, .. } if *key == revoked))
    }

    fn gossip(
        &self,
        name: &'static str,
        rule: &'static str,
        operator: bool,
        bytes: Vec<u8>,
    ) -> Gossip {
        Gossip {
            name,
            rule: Some(rule),
            topic: if operator {
                self.operator_topic.clone()
            } else {
                self.demo_topic.clone()
            },
            bytes,
            penalized: true,
        }
    }

    /// The gossip attacks, in rounds: each round is sent by a fresh peer identity, so
    /// that no peer collects enough penalties to be graylisted before its last attack
    /// was validated (gossipsub ignores everything from a graylisted peer).
    pub fn gossip_rounds(&self) -> Vec<Vec<Gossip>> {
        let k = &self.keys;
        let bytes = small_component("crafted");
        let rel = |v: &str, license: Option<&str>| release(v, &bytes, license);
        let mit = Some("MIT");

        // A real release by the owner, its content swapped for other bytes.
        let original = self.release_record();
        let mut altered = original.record.clone();
        altered.body = release("1.0.0", &small_component("malicious"), mit);
        let signatures_and_keys = vec![
            self.gossip(
                "owner's release altered in transit",
                "bad signature on record",
                false,
                tampered(original, &altered),
            ),
            self.gossip(
                "forged owner signature",
                "bad signature on record",
                false,
                forged(
                    &k.owner.public(),
                    &k.rogue,
                    &self.next().record(rel("9.0.0", mit)),
                ),
            ),
            self.gossip(
                "release by an unknown key",
                "may not publish releases in namespace `demo`",
                false,
                self.next().signed(&k.rogue, rel("9.0.1", mit)).bytes,
            ),
            self.gossip(
                "yank by an unknown key",
                "may not yank releases in namespace `demo`",
                false,
                self.next()
                    .signed(
                        &k.rogue,
                        Body::Yank {
                            version: "1.0.0".into(),
                            reason: Some("hostile".into()),
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "release by a key holding only `yank`",
                "lacks the `release` permission on demo:victim",
                false,
                self.next().signed(&k.yanker, rel("9.0.2", mit)).bytes,
            ),
            self.gossip(
                "release by a revoked grantee",
                "was revoked in `demo:victim`",
                false,
                self.next().signed(&k.revoked, rel("9.0.3", mit)).bytes,
            ),
        ];

        let mut future = self.next();
        future.time_ms += 24 * 3600 * 1000;
        let authority_and_policy = vec![
            self.gossip(
                "release by a removed namespace owner",
                "was revoked in `demo`",
                false,
                self.next().signed(&k.ex_owner, rel("9.0.4", mit)).bytes,
            ),
            self.gossip(
                "grantee granting itself more rights",
                "may not grant keys in namespace `demo`: only its owners may",
                false,
                self.next()
                    .signed(
                        &k.granted,
                        Body::Grant {
                            key: k.rogue.public(),
                            perms: vec![Perm::Release, Perm::Yank],
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "release stamped a day ahead",
                "in the future",
                false,
                future.signed(&k.granted, rel("9.0.5", mit)).bytes,
            ),
            self.gossip(
                "release without a license (SPDX required)",
                "has no license, and this network requires",
                false,
                self.next().signed(&k.granted, rel("9.0.6", None)).bytes,
            ),
            self.gossip(
                "release with a non-SPDX license",
                "is not a valid SPDX expression",
                false,
                self.next()
                    .signed(&k.granted, rel("9.0.7", Some("Totally Free License")))
                    .bytes,
            ),
            self.gossip(
                "package with a malformed name",
                "in `Demo:Bad_Name` is not a lowercase kebab-case label",
                false,
                At {
                    log: "Demo:Bad_Name".into(),
                    seq: 0,
                    prev: None,
                    ..self.next()
                }
                .signed(
                    &k.rogue,
                    Body::PackageInit {
                        kind: ferry_protocol::component::PackageKind::Component,
                    },
                )
                .bytes,
            ),
        ];

        let mut elsewhere = self.next();
        elsewhere.network = Some(RecordId::of(b"another network"));
        let oversized = Body::Yank {
            version: "1.0.0".into(),
            reason: Some("x".repeat(61 * 1024)),
        };
        let operator_and_size = vec![
            self.gossip(
                "deletion by a non-operator",
                "is not an operator of this network",
                true,
                self.next_operator()
                    .signed(
                        &k.rogue,
                        Body::Delete {
                            target: Target::Package {
                                package: VICTIM.into(),
                            },
                            reason: "hostile takedown".into(),
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "namespace defined by a non-operator",
                "is not an operator of this network",
                true,
                self.next_operator()
                    .signed(
                        &k.rogue,
                        Body::DefineNamespace {
                            namespace: "evil".into(),
                            owners: vec![k.rogue.public()],
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "policy lifted by a non-operator",
                "is not an operator of this network",
                true,
                self.next_operator()
                    .signed(
                        &k.rogue,
                        Body::SetPolicy {
                            require_spdx: false,
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "owner's record replayed from another network",
                "belongs to network",
                false,
                elsewhere
                    .signed(
                        &k.owner,
                        Body::Yank {
                            version: "1.0.0".into(),
                            reason: None,
                        },
                    )
                    .bytes,
            ),
            self.gossip(
                "oversized record (61 KiB)",
                "over the 61440-byte limit",
                false,
                self.next().signed(&k.granted, oversized).bytes,
            ),
            self.gossip(
                "truncated CBOR",
                "malformed record: envelope",
                false,
                original.bytes[..original.bytes.len() / 2].to_vec(),
            ),
        ];

        let mut wrong_prev = self.next();
        wrong_prev.prev = Some(RecordId::of(b"a history that never was"));
        let mut trailing = original.bytes.clone();
        trailing.push(0);
        let benign = |name, bytes| Gossip {
            name,
            rule: None,
            topic: self.demo_topic.clone(),
            bytes,
            penalized: false,
        };
        let encoding_and_replays = vec![
            Gossip {
                rule: Some("names prev"),
                ..benign(
                    "release on a fabricated history (wrong prev)",
                    wrong_prev.signed(&k.granted, rel("9.0.8", mit)).bytes,
                )
            },
            benign(
                "replay of the revoked key's old grant",
                self.old_grant().bytes.clone(),
            ),
            benign("replay of the owner's release", original.bytes.clone()),
            self.gossip(
                "valid record with a trailing byte",
                "not canonically encoded",
                false,
                trailing,
            ),
            self.gossip(
                "garbage bytes",
                "malformed record",
                false,
                b"\xa1\x67payload\x19\xff\xff not an envelope".to_vec(),
            ),
        ];
        vec![
            signatures_and_keys,
            authority_and_policy,
            operator_and_size,
            encoding_and_replays,
        ]
    }

    /// Attacks honest nodes can only judge after syncing with the sender: each is sent
    /// by a peer of its own, and costs it score once a sync showed it was never valid.
    pub fn deferred(&self) -> Vec<Gossip> {
        let k = &self.keys;
        let bytes = small_component("crafted");
        let mut gap = self.next();
        gap.seq += 4;
        gap.prev = Some(RecordId::of(b"four records nobody has"));
        vec![
            self.gossip(
                "package in an undefined namespace",
                "namespace `ghost` is not defined in this network",
                false,
                At {
                    log: "ghost:thing".into(),
                    seq: 0,
                    prev: None,
                    ..self.next()
                }
                .signed(
                    &k.rogue,
                    Body::PackageInit {
                        kind: ferry_protocol::component::PackageKind::Component,
                    },
                )
                .bytes,
            ),
            self.gossip(
                "release four records ahead of the log",
                "is ahead of the log",
                false,
                gap.signed(&k.granted, release("9.0.9", &bytes, Some("MIT")))
                    .bytes,
            ),
        ]
    }
}
