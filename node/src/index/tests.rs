//! Index tests on a real redb file: ingest, rejection without side effects, search,
//! heads paging, pending downloads and reopening.

use ferry_protocol::component::PackageKind;
use ferry_protocol::record::{Body, RECORD_FORMAT, Record, Release};
use ferry_protocol::{Keypair, RecordId, chunk};
use serde_bytes::ByteBuf;

use super::*;

/// The clock every index test runs at.
pub(crate) const NOW: u64 = 1_800_000_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    index: Index,
    op: Keypair,
    net: NetworkId,
    path: std::path::PathBuf,
}

/// `body` signed by `key` at `log`/`seq` after `prev`, stamped [`NOW`].
pub(crate) fn sign(
    key: &Keypair,
    network: Option<NetworkId>,
    log: &str,
    seq: u64,
    prev: Option<RecordId>,
    body: Body,
) -> SignedRecord {
    SignedRecord::sign(
        key,
        Record {
            format: RECORD_FORMAT,
            network,
            log: log.into(),
            seq,
            prev,
            time_ms: NOW,
            body,
        },
    )
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let op = Keypair::from_seed([1; 32]);
    let genesis = sign(
        &op,
        None,
        OPERATOR_LOG,
        0,
        None,
        Body::OperatorInit {
            operators: vec![op.public()],
            nonce: ByteBuf::from(vec![0; 16]),
        },
    );
    let path = dir.path().join("index.redb");
    let index = Index::open(&path, genesis.id).unwrap();
    assert!(matches!(
        index.ingest(&genesis, NOW).unwrap(),
        Applied::New { .. }
    ));
    let def = sign(
        &op,
        Some(genesis.id),
        OPERATOR_LOG,
        1,
        Some(genesis.id),
        Body::DefineNamespace {
            namespace: "acme".into(),
            owners: vec![op.public()],
        },
    );
    index.ingest(&def, NOW).unwrap();
    Fixture {
        _dir: dir,
        index,
        net: genesis.id,
        op,
        path,
    }
}

impl Fixture {
    fn publish(&self, pkg: &str, version: &str, bytes: &[u8], description: &str) -> SignedRecord {
        let name: PackageName = pkg.parse().unwrap();
        let (seq, prev) = match self.index.package_state(&name).unwrap() {
            Some(s) => (s.head.seq + 1, Some(s.head.id)),
            None => {
                let init = sign(
                    &self.op,
                    Some(self.net),
                    pkg,
                    0,
                    None,
                    Body::PackageInit {
                        kind: PackageKind::Component,
                    },
                );
                self.index.ingest(&init, NOW).unwrap();
                (1, Some(init.id))
            }
        };
        let rec = sign(
            &self.op,
            Some(self.net),
            pkg,
            seq,
            prev,
            Body::Release(Release {
                version: version.into(),
                kind: PackageKind::Component,
                content: ContentId::of(bytes),
                size: bytes.len() as u64,
                chunk_size: chunk::CHUNK_SIZE,
                chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
                description: Some(description.into()),
                license: None,
                summary: Some(Default::default()),
                attachments: Default::default(),
            }),
        );
        self.index.ingest(&rec, NOW).unwrap();
        rec
    }
}

#[test]
fn ingest_indexes_releases_and_content() {
    let f = fixture();
    f.publish(
        "acme:image-resize",
        "1.0.0",
        b"one",
        "Resize PNG images fast",
    );
    f.publish(
        "acme:image-resize",
        "1.1.0",
        b"two",
        "Resize PNG images faster",
    );
    let rels = f
        .index
        .releases(&"acme:image-resize".parse().unwrap())
        .unwrap();
    assert_eq!(
        rels.iter()
            .map(|r| r.version.to_string())
            .collect::<Vec<_>>(),
        ["1.0.0", "1.1.0"]
    );
    let by = f.index.releases_by_content(&ContentId::of(b"two")).unwrap();
    assert_eq!(by.len(), 1);
    assert_eq!(by[0].version.to_string(), "1.1.0");
    assert!(
        f.index
            .releases_by_content(&ContentId::of(b"none"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn duplicates_and_rejections_change_nothing() {
    let f = fixture();
    let rec = f.publish("acme:x", "1.0.0", b"a", "d");
    assert_eq!(f.index.ingest(&rec, NOW).unwrap(), Applied::Duplicate);
    let before = f.index.heads(None, 100).unwrap();
    // A record by a stranger is refused and leaves no trace.
    let bad = sign(
        &Keypair::from_seed([9; 32]),
        Some(f.net),
        "acme:x",
        2,
        Some(rec.id),
        Body::Release(Release {
            version: "2.0.0".into(),
            kind: PackageKind::Component,
            content: ContentId::of(b"evil"),
            size: 4,
            chunk_size: chunk::CHUNK_SIZE,
            chunks: ByteBuf::from(chunk::digests(b"evil", chunk::CHUNK_SIZE)),
            description: Some("evil".into()),
            license: None,
            summary: Some(Default::default()),
            attachments: Default::default(),
        }),
    );
    assert!(matches!(
        f.index.ingest(&bad, NOW),
        Err(IngestError::Rejected(
            Rejection::NotAllowedInNamespace { .. }
        ))
    ));
    assert_eq!(f.index.heads(None, 100).unwrap(), before);
    assert!(f.index.search("evil", 10).unwrap().is_empty());
    assert!(f.index.record(&bad.id).unwrap().is_none());
    // A different record at a taken position is a conflict, not a silent replace.
    let other = sign(
        &f.op,
        Some(f.net),
        "acme:x",
        1,
        rec.record.prev,
        Body::Release(Release {
            version: "1.0.1".into(),
            kind: PackageKind::Component,
            content: ContentId::of(b"b"),
            size: 1,
            chunk_size: chunk::CHUNK_SIZE,
            chunks: ByteBuf::from(chunk::digests(b"b", chunk::CHUNK_SIZE)),
            description: None,
            license: None,
            summary: Some(Default::default()),
            attachments: Default::default(),
        }),
    );
    assert!(matches!(
        f.index.ingest(&other, NOW),
        Ok(Applied::Forked { seq: 1, .. })
    ));
    // The log is rewound before the contested position and both records are evidence.
    let x: PackageName = "acme:x".parse().unwrap();
    let state = f.index.package_state(&x).unwrap().unwrap();
    assert_eq!(state.forked.as_ref().unwrap().candidates.len(), 2);
    assert_eq!(state.head.seq, 0);
    assert!(f.index.releases(&x).unwrap().is_empty());
    assert!(f.index.search("acme:x", 5).unwrap().is_empty());
    assert!(f.index.evidence(&rec.id).unwrap().is_some());
    assert!(f.index.evidence(&other.id).unwrap().is_some());
    // Seeing either again changes nothing; the fork shows in the heads.
    assert_eq!(f.index.ingest(&rec, NOW).unwrap(), Applied::Duplicate);
    let (heads, _) = f.index.heads(None, 10).unwrap();
    assert_eq!(
        heads.iter().find(|h| h.log == "acme:x").unwrap().fork.len(),
        2
    );
    // An owner resolves it by keeping the first release.
    let resolve = sign(
        &f.op,
        Some(f.net),
        "acme:x",
        2,
        Some(rec.id),
        Body::ResolveFork { keep: rec.id },
    );
    assert!(matches!(
        f.index.ingest(&resolve, NOW),
        Ok(Applied::New { .. })
    ));
    let state = f.index.package_state(&x).unwrap().unwrap();
    assert!(state.forked.is_none());
    assert_eq!(state.head.id, resolve.id);
    let rels = f.index.releases(&x).unwrap();
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0].content, ContentId::of(b"a"));
    assert_eq!(f.index.search("acme:x", 5).unwrap().len(), 1);
}

#[test]
fn search_ranks_names_before_descriptions() {
    let f = fixture();
    f.publish("acme:resize", "1.0.0", b"1", "Image tool");
    f.publish(
        "acme:thumbnails",
        "1.0.0",
        b"2",
        "Resize pictures into thumbnails",
    );
    f.publish("acme:http-router", "0.3.0", b"3", "Route HTTP requests");
    let hits = f.index.search("resize", 10).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.package.as_str()).collect::<Vec<_>>(),
        ["acme:resize", "acme:thumbnails"]
    );
    let hits = f.index.search("acme:http-router", 10).unwrap();
    assert_eq!(hits[0].package, "acme:http-router");
    assert_eq!(hits[0].version, "0.3.0");
    // Every word must match; prefixes count.
    assert_eq!(f.index.search("rout htt", 10).unwrap().len(), 1);
    assert!(f.index.search("route nothing", 10).unwrap().is_empty());
    assert!(f.index.search("  ", 10).unwrap().is_empty());
}

#[test]
fn heads_page_and_records_replay_in_order() {
    let f = fixture();
    for i in 0..5 {
        f.publish(
            &format!("acme:p{i}"),
            "1.0.0",
            format!("b{i}").as_bytes(),
            "x",
        );
    }
    let (p1, more) = f.index.heads(None, 3).unwrap();
    assert!(more);
    let (p2, more) = f.index.heads(Some(&p1[2].log), 3).unwrap();
    assert!(!more);
    assert_eq!(p1.len() + p2.len(), 6, "operator log and five packages");
    let recs = f.index.records_from(OPERATOR_LOG, 0, 10).unwrap();
    assert_eq!(recs.len(), 2);
    let recs = f.index.records_from("acme:p0", 1, 10).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(SignedRecord::decode(&recs[0]).unwrap().record.seq, 1);
}

#[test]
fn pending_downloads_and_reopen_survive() {
    let f = fixture();
    f.publish("acme:x", "1.0.0", b"abc", "d");
    let e = f
        .index
        .releases(&"acme:x".parse().unwrap())
        .unwrap()
        .remove(0);
    f.index.add_pending(&e).unwrap();
    let Fixture {
        index,
        path,
        net,
        _dir,
        ..
    } = f;
    drop(index);
    let index = Index::open(&path, net).unwrap();
    assert_eq!(index.pending().unwrap(), vec![e.clone()]);
    index.remove_pending(&e.content).unwrap();
    assert!(index.pending().unwrap().is_empty());
    assert_eq!(index.search("acme:x", 5).unwrap().len(), 1);
}

#[test]
fn refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema", SCHEMA_VERSION + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    assert!(matches!(
        Index::open(&path, RecordId::of(b"n")),
        Err(IndexError::NewerSchema { .. })
    ));
}

mod holds;
/// Regression (found by the simulation's adversaries): a validly signed record by a key
/// with no right in a log, at a position another record holds, used to count as an
/// equivocation and fork the log (or freeze the operator log). It must be refused.
#[test]
fn strangers_cannot_fork_a_log() {
    let f = fixture();
    let first = f.publish("acme:x", "1.0.0", b"a", "d");
    f.publish("acme:x", "1.1.0", b"b", "d");
    let stranger = Keypair::from_seed([9; 32]);
    let before = f.index.heads(None, 100).unwrap();
    let release = |version: &str| {
        Body::Release(Release {
            version: version.into(),
            kind: PackageKind::Component,
            content: ContentId::of(b"evil"),
            size: 4,
            chunk_size: chunk::CHUNK_SIZE,
            chunks: ByteBuf::from(chunk::digests(b"evil", chunk::CHUNK_SIZE)),
            description: None,
            license: None,
            summary: Some(Default::default()),
            attachments: Default::default(),
        })
    };
    // At a taken position of a package log, with the right prev.
    let squat = sign(
        &stranger,
        Some(f.net),
        "acme:x",
        1,
        first.record.prev,
        release("6.6.6"),
    );
    assert!(matches!(
        f.index.ingest(&squat, NOW),
        Err(IngestError::Rejected(
            Rejection::NotAllowedInNamespace { .. }
        ))
    ));
    // At a taken position of the operator log.
    let (op_head, _) = f.index.head(OPERATOR_LOG).unwrap().unwrap();
    let coup = sign(
        &stranger,
        Some(f.net),
        OPERATOR_LOG,
        op_head.seq,
        Some(f.net),
        Body::DefineNamespace {
            namespace: "evil".into(),
            owners: vec![stranger.public()],
        },
    );
    assert!(matches!(
        f.index.ingest(&coup, NOW),
        Err(IngestError::Rejected(Rejection::UnknownSigner(_)))
    ));
    assert_eq!(f.index.heads(None, 100).unwrap(), before);
    for id in [squat.id, coup.id] {
        assert!(!f.index.knows(&id).unwrap(), "{id} was kept");
    }
    let x: PackageName = "acme:x".parse().unwrap();
    assert!(f.index.package_state(&x).unwrap().unwrap().forked.is_none());
    assert!(f.index.operator_state().unwrap().unwrap().forked.is_none());
    // An owner's conflicting record still forks the log.
    let other = sign(
        &f.op,
        Some(f.net),
        "acme:x",
        1,
        first.record.prev,
        release("1.0.1"),
    );
    assert!(matches!(
        f.index.ingest(&other, NOW),
        Ok(Applied::Forked { seq: 1, .. })
    ));
    // And once forked, a stranger's third candidate is refused too.
    let third = sign(
        &stranger,
        Some(f.net),
        "acme:x",
        1,
        first.record.prev,
        release("7.7.7"),
    );
    assert!(f.index.ingest(&third, NOW).is_err());
    assert!(!f.index.knows(&third.id).unwrap());
}
