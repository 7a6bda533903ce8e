//! Attacks through the sync protocol: the attacker answers honest nodes' requests
//! with crafted heads and pages, or with answers that break the protocol.

use ferry_protocol::RecordId;
use ferry_protocol::wire::{LogHead, SyncRequest, SyncResponse};
use serde_bytes::ByteBuf;

use super::attacks::{Scene, VICTIM};
use super::craft::{forged, release};
use super::peer::Script;
use crate::integration::support::small_component;

/// An attack through the sync protocol: the peer answers honest nodes' requests with
/// crafted pages.
pub struct SyncAttack {
    /// Short name, printed.
    pub name: &'static str,
    /// A fragment of the refusal every honest node must log, if it logs one.
    pub rule: Option<&'static str>,
    /// Record bytes it serves (checked to be unknown everywhere afterwards).
    pub served: Vec<Vec<u8>>,
    /// How it answers.
    pub script: Script,
}

/// Answers heads requests with `heads` and records requests with `page`.
fn serve(heads: Vec<LogHead>, page: Vec<Vec<u8>>) -> Script {
    Box::new(move |req| {
        Some(match req {
            SyncRequest::Heads { .. } => SyncResponse::Heads {
                heads: heads.clone(),
                more: false,
            },
            SyncRequest::Records { log, .. } if log == VICTIM => {
                SyncResponse::Records(page.iter().cloned().map(ByteBuf::from).collect())
            }
            _ => SyncResponse::Records(Vec::new()),
        })
    })
}

/// Advertises `n` logs it never serves: every records request is held unanswered.
pub fn heads_flood(n: usize) -> Script {
    let heads: Vec<LogHead> = (0..n)
        .map(|i| LogHead {
            log: format!("demo:flood-n{i}"),
            seq: 0,
            id: RecordId::of(format!("flood {i}").as_bytes()),
            fork: Vec::new(),
        })
        .collect();
    Box::new(move |req| match req {
        SyncRequest::Heads { .. } => Some(SyncResponse::Heads {
            heads: heads.clone(),
            more: false,
        }),
        _ => None,
    })
}

impl Scene {
    fn ahead(&self, by: u64) -> LogHead {
        let (seq, _) = self.head();
        LogHead {
            log: VICTIM.into(),
            seq: seq + by,
            id: RecordId::of(b"a head that does not exist"),
            fork: Vec::new(),
        }
    }

    /// The sync attacks.
    pub fn sync_attacks(&self) -> Vec<SyncAttack> {
        let k = &self.keys;
        let bytes = small_component("crafted");
        let forged_page = vec![forged(
            &k.owner.public(),
            &k.rogue,
            &self.next().record(release("9.1.0", &bytes, Some("MIT"))),
        )];
        let replay_page = vec![
            self.old_grant().bytes.clone(),
            self.next()
                .signed(&k.rogue, release("9.1.1", &bytes, Some("MIT")))
                .bytes,
        ];
        let (seq, id) = self.head();
        let fake_fork = LogHead {
            log: VICTIM.into(),
            seq,
            id,
            fork: vec![RecordId::of(b"fake candidate 1"), RecordId::of(b"fake")],
        };
        let original = self.release_record().bytes.clone();
        let truncated = original[..original.len() - 9].to_vec();
        let by_id = truncated.clone();
        let huge = vec![0x5au8; 10 * 1024 * 1024];
        vec![
            SyncAttack {
                name: "sync page with a forged signature",
                rule: Some("bad signature on record"),
                served: forged_page.clone(),
                script: serve(vec![self.ahead(3)], forged_page),
            },
            SyncAttack {
                name: "sync page: an old record replayed, then an unknown key's release",
                rule: Some("may not publish releases in namespace `demo`"),
                served: replay_page.clone(),
                script: serve(vec![self.ahead(2)], replay_page),
            },
            SyncAttack {
                name: "fake fork evidence answered with truncated CBOR",
                rule: Some("malformed record"),
                served: vec![truncated],
                script: Box::new(move |req| {
                    Some(match req {
                        SyncRequest::Heads { .. } => SyncResponse::Heads {
                            heads: vec![fake_fork.clone()],
                            more: false,
                        },
                        _ => SyncResponse::Records(vec![ByteBuf::from(by_id.clone())]),
                    })
                }),
            },
            SyncAttack {
                name: "records sent where heads were asked",
                rule: Some("wrong kind of response"),
                served: Vec::new(),
                script: Box::new(move |_| Some(SyncResponse::Records(Vec::new()))),
            },
            SyncAttack {
                name: "sync response over the 9 MiB cap",
                rule: Some("sync response that does not decode"),
                served: Vec::new(),
                script: serve(vec![self.ahead(1)], vec![huge]),
            },
        ]
    }
}
