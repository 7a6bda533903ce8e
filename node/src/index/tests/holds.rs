//! Pins, pinned blobs and stored holds on a real redb file.

use ferry_protocol::filter::{Filter, Pattern};
use ferry_protocol::pin::{Pin, Pins};
use ferry_protocol::record::{Attachment, Attachments, Attestation, Target, attest_log};

use super::*;

fn pat(s: &str) -> Pattern {
    s.parse().unwrap()
}

fn pin(f: Filter) -> Pin {
    Pin::try_from(f).unwrap()
}

impl Fixture {
    /// Appends an operator record after the current head.
    fn operator(&self, body: Body) {
        let op = self.index.operator_state().unwrap().unwrap();
        let rec = sign(
            &self.op,
            Some(self.net),
            OPERATOR_LOG,
            op.head.seq + 1,
            Some(op.head.id),
            body,
        );
        assert!(matches!(
            self.index.ingest(&rec, NOW).unwrap(),
            Applied::New { .. }
        ));
    }

    /// Publishes a release at `time_ms` with a license and attachments.
    fn release_at(
        &self,
        pkg: &str,
        version: &str,
        bytes: &[u8],
        time_ms: u64,
        license: Option<&str>,
        attachments: Attachments,
    ) -> SignedRecord {
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
        let rec = SignedRecord::sign(
            &self.op,
            Record {
                format: RECORD_FORMAT,
                network: Some(self.net),
                log: pkg.into(),
                seq,
                prev,
                time_ms,
                body: Body::Release(Release {
                    version: version.into(),
                    kind: PackageKind::Component,
                    content: ContentId::of(bytes),
                    size: bytes.len() as u64,
                    chunk_size: chunk::CHUNK_SIZE,
                    chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
                    description: None,
                    license: license.map(String::from),
                    summary: Some(Default::default()),
                    attachments,
                }),
            },
        );
        assert!(matches!(
            self.index.ingest(&rec, NOW).unwrap(),
            Applied::New { .. }
        ));
        rec
    }
}

fn attachment(bytes: &[u8]) -> Attachment {
    Attachment {
        content: ContentId::of(bytes),
        size: bytes.len() as u64,
        chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
    }
}

fn contents(index: &Index, pins: &Pins) -> Vec<ContentId> {
    index
        .pinned_blobs(pins)
        .unwrap()
        .iter()
        .map(|b| b.content)
        .collect()
}

#[test]
fn pinned_blobs_follow_the_filters_newest_first() {
    let f = fixture();
    f.operator(Body::DefineNamespace {
        namespace: "beta".into(),
        owners: vec![f.op.public()],
    });
    let readme = Attachments {
        readme: Some(attachment(b"a readme")),
        source_archive: Some(attachment(&[7u8; 100])),
        ..Attachments::default()
    };
    f.release_at("acme:a", "1.0.0", b"a1", NOW - 30, Some("MIT"), readme);
    f.release_at(
        "acme:a",
        "1.1.0",
        b"a2",
        NOW - 10,
        Some("Apache-2.0"),
        Attachments::default(),
    );
    f.release_at(
        "acme:b",
        "1.0.0",
        b"b1",
        NOW - 20,
        Some("MIT"),
        Attachments::default(),
    );
    f.release_at(
        "beta:x",
        "1.0.0",
        b"x1",
        NOW - 5,
        Some("MIT"),
        Attachments::default(),
    );

    // No pins: nothing is pinned (a node without pins keeps only its user's cache).
    assert!(contents(&f.index, &Pins::default()).is_empty());

    let mut mit = Filter::new(vec![pat("acme:*")]);
    mit.licenses = Some(vec!["MIT".into()]);
    mit.max_size = Some(50);
    assert!(!f.index.put_pin(&pin(mit), NOW).unwrap());
    let pins = f.index.pins().unwrap();
    // Newest release first; the source archive is over the pin's size limit; the
    // Apache release and the beta package are outside the pin.
    assert_eq!(
        contents(&f.index, &pins),
        vec![
            ContentId::of(b"b1"),
            ContentId::of(b"a1"),
            ContentId::of(b"a readme")
        ]
    );
    let blobs = f.index.pinned_blobs(&pins).unwrap();
    assert_eq!(
        blobs[2].entry.size, 8,
        "an attachment's own size and chunks"
    );
    assert!(blobs.iter().all(|b| b.pin == pat("acme:*")));

    // A second pin adds the beta package; replacing the first widens it.
    f.index.put_pin(&Pin::new(pat("beta:x")), NOW).unwrap();
    assert!(f.index.put_pin(&Pin::new(pat("acme:*")), NOW).unwrap());
    let pins = f.index.pins().unwrap();
    assert_eq!(pins.iter().count(), 2);
    assert_eq!(contents(&f.index, &pins).len(), 6);

    // A release found lying is not pinned, nor is content the operator deleted.
    let a2 = f.index.release("acme:a", "1.1.0").unwrap().unwrap();
    f.index
        .set_summary_verdict(&a2.record, &Err("it lies".into()))
        .unwrap();
    f.operator(Body::Delete {
        target: Target::Content {
            content: ContentId::of(b"x1"),
        },
        reason: "policy".into(),
    });
    let left = contents(&f.index, &pins);
    assert!(!left.contains(&ContentId::of(b"a2")) && !left.contains(&ContentId::of(b"x1")));
    assert_eq!(left.len(), 4);

    // Pins survive a reopen; removing one is reported once.
    let Fixture {
        index,
        path,
        _dir,
        net,
        ..
    } = f;
    drop(index);
    let index = Index::open(&path, net).unwrap();
    assert_eq!(index.pins().unwrap(), pins);
    assert!(index.remove_pin(&pat("beta:x")).unwrap());
    assert!(!index.remove_pin(&pat("beta:x")).unwrap());
    assert_eq!(index.pins().unwrap().iter().count(), 1);
}

#[test]
fn blobs_stored_before_holds_existed_are_held_once() {
    let f = fixture();
    f.release_at(
        "acme:a",
        "1.0.0",
        b"mine",
        NOW - 1,
        None,
        Attachments::default(),
    );
    let (mine, fetched) = (ContentId::of(b"mine"), ContentId::of(b"fetched"));
    assert!(
        f.index
            .seed_holds(&[mine, fetched], &f.op.public(), 7)
            .unwrap()
    );
    assert!(f.index.published().unwrap().contains(&mine));
    assert_eq!(f.index.cache().unwrap().get(&fetched), Some(&7));
    assert!(!f.index.cache().unwrap().contains_key(&mine));
    // Only once: later blobs get their holds when they arrive.
    f.index.forget_cache(&[fetched]).unwrap();
    assert!(!f.index.seed_holds(&[fetched], &f.op.public(), 8).unwrap());
    assert!(f.index.cache().unwrap().is_empty());
}

#[test]
fn cache_and_published_holds_persist() {
    let f = fixture();
    let (one, two) = (ContentId::of(b"one"), ContentId::of(b"two"));
    f.index.touch_cache(&one, 10).unwrap();
    f.index.touch_cache(&two, 20).unwrap();
    f.index.touch_cache(&one, 30).unwrap();
    f.index.mark_published(&[two], 5).unwrap();
    let Fixture {
        index,
        path,
        _dir,
        net,
        ..
    } = f;
    drop(index);
    let index = Index::open(&path, net).unwrap();
    let cache = index.cache().unwrap();
    assert_eq!(cache.get(&one), Some(&30), "the last use wins");
    assert_eq!(cache.get(&two), Some(&20));
    assert!(index.published().unwrap().contains(&two));
    index.forget_cache(&[one]).unwrap();
    assert_eq!(index.cache().unwrap().len(), 1);
}

#[test]
fn attestations_of_unfollowed_packages_do_not_block_an_attester_log() {
    let f = fixture();
    f.operator(Body::DefineNamespace {
        namespace: "beta".into(),
        owners: vec![f.op.public()],
    });
    let rel = f.release_at(
        "acme:a",
        "1.0.0",
        b"a1",
        NOW - 1,
        None,
        Attachments::default(),
    );
    f.index.put_pin(&Pin::new(pat("acme:*")), NOW).unwrap();
    let attester = Keypair::from_seed([9; 32]);
    let log = attest_log(&attester.public());
    let attest = |seq: u64, prev: Option<RecordId>, package: &str, release: RecordId| {
        sign(
            &attester,
            Some(f.net),
            &log,
            seq,
            prev,
            Body::Attest(Attestation {
                package: package.into(),
                version: "1.0.0".into(),
                release,
                claim: "reviewed".into(),
                data: None,
            }),
        )
    };
    // beta:x is not followed here: its release cannot be checked, and must not stop
    // the attester's later records from applying.
    let unknown = RecordId::of(b"a beta release this node never saw");
    let first = attest(0, None, "beta:x", unknown);
    assert!(matches!(
        f.index.ingest(&first, NOW).unwrap(),
        Applied::New { .. }
    ));
    let second = attest(1, Some(first.id), "acme:a", rel.id);
    assert!(matches!(
        f.index.ingest(&second, NOW).unwrap(),
        Applied::New { .. }
    ));
    assert_eq!(f.index.attestations(&rel.id).unwrap().len(), 1);
    // A followed package's unknown release is still refused.
    let third = attest(2, Some(second.id), "acme:a", unknown);
    assert!(matches!(
        f.index.ingest(&third, NOW),
        Err(IngestError::Rejected(Rejection::UnknownRelease(_)))
    ));
}
