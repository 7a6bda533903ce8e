//! One test per rejection rule, plus the happy path.

use super::*;
use crate::envelope::MAX_RECORD_BYTES;
use crate::record::Record;
use serde_bytes::ByteBuf;

const NOW: u64 = 1_800_000_000_000;

fn key(n: u8) -> crate::Keypair {
    crate::Keypair::from_seed([n; 32])
}

struct World {
    op: crate::Keypair,
    owner: crate::Keypair,
    net: NetworkId,
    genesis: SignedRecord,
    state: OperatorState,
}

fn rec(
    network: Option<NetworkId>,
    log: &str,
    seq: u64,
    prev: Option<RecordId>,
    body: Body,
) -> Record {
    Record {
        format: RECORD_FORMAT,
        network,
        log: log.into(),
        seq,
        prev,
        time_ms: NOW,
        body,
    }
}

fn release(version: &str, bytes: &[u8]) -> Release {
    Release {
        version: version.into(),
        kind: PackageKind::Component,
        content: ContentId::of(bytes),
        size: bytes.len() as u64,
        chunk_size: chunk::CHUNK_SIZE,
        chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
        description: Some("demo".into()),
        license: Some("MIT".into()),
    }
}

fn world() -> World {
    let op = key(1);
    let owner = key(2);
    let genesis = SignedRecord::sign(
        &op,
        rec(
            None,
            OPERATOR_LOG,
            0,
            None,
            Body::OperatorInit {
                operators: vec![op.public()],
                nonce: ByteBuf::from(vec![9; 16]),
            },
        ),
    );
    let net = genesis.id;
    let s0 = apply_operator(&net, None, &genesis, NOW).unwrap();
    let def = SignedRecord::sign(
        &op,
        rec(
            Some(net),
            OPERATOR_LOG,
            1,
            Some(genesis.id),
            Body::DefineNamespace {
                namespace: "acme".into(),
                owners: vec![owner.public()],
            },
        ),
    );
    let state = apply_operator(&net, Some(&s0), &def, NOW).unwrap();
    World {
        op,
        owner,
        net,
        genesis,
        state,
    }
}

impl World {
    fn init(&self, pkg: &str) -> (SignedRecord, PackageState) {
        let r = SignedRecord::sign(
            &self.owner,
            rec(
                Some(self.net),
                pkg,
                0,
                None,
                Body::PackageInit {
                    kind: PackageKind::Component,
                },
            ),
        );
        let s = apply_package(&self.state, None, &r, NOW).unwrap();
        (r, s)
    }

    fn next_op(&self, body: Body) -> Record {
        rec(
            Some(self.net),
            OPERATOR_LOG,
            self.state.head.seq + 1,
            Some(self.state.head.id),
            body,
        )
    }

    fn next_pkg(&self, s: &PackageState, body: Body) -> Record {
        rec(
            Some(self.net),
            &s.package.to_string(),
            s.head.seq + 1,
            Some(s.head.id),
            body,
        )
    }
}

#[test]
fn happy_path_builds_state() {
    let w = world();
    assert_eq!(w.state.namespaces.len(), 1);
    let (_, s) = w.init("acme:router");
    let r = SignedRecord::sign(
        &w.owner,
        w.next_pkg(&s, Body::Release(release("1.0.0", b"abc"))),
    );
    let s1 = apply_package(&w.state, Some(&s), &r, NOW).unwrap();
    assert_eq!(s1.head.seq, 1);
    assert_eq!(s1.versions.len(), 1);
    // The same record again is stale, not a second release.
    assert!(matches!(
        apply_package(&w.state, Some(&s1), &r, NOW),
        Err(Rejection::Stale { .. })
    ));
}

#[test]
fn bad_signature() {
    let w = world();
    let mut r = SignedRecord::sign(
        &w.op,
        w.next_op(Body::DefineNamespace {
            namespace: "x".into(),
            owners: vec![w.op.public()],
        }),
    );
    // Flip a byte inside the signature: the last bytes of the envelope.
    let n = r.bytes.len();
    r.bytes[n - 1] ^= 1;
    let err: Rejection = SignedRecord::decode(&r.bytes).unwrap_err().into();
    assert!(matches!(err, Rejection::BadSignature(k) if k == w.op.public()));
}

#[test]
fn signature_from_another_key_under_our_name() {
    let w = world();
    let good = SignedRecord::sign(
        &w.op,
        w.next_op(Body::DefineNamespace {
            namespace: "x".into(),
            owners: vec![w.op.public()],
        }),
    );
    let forged = SignedRecord::sign(&key(66), good.record.clone());
    // Swap the signer field to the operator's key by re-encoding the envelope by hand.
    let mut env: ciborium::Value = ciborium::from_reader(forged.bytes.as_slice()).unwrap();
    if let ciborium::Value::Map(m) = &mut env {
        for (k, v) in m.iter_mut() {
            if k.as_text() == Some("signer") {
                *v = ciborium::Value::Bytes(w.op.public().as_bytes().to_vec());
            }
        }
    }
    let mut bytes = Vec::new();
    ciborium::into_writer(&env, &mut bytes).unwrap();
    assert!(matches!(
        SignedRecord::decode(&bytes).map_err(Rejection::from),
        Err(Rejection::BadSignature(_))
    ));
}

#[test]
fn malformed_and_truncated_cbor() {
    let w = world();
    assert!(matches!(
        SignedRecord::decode(b"\xff\x00garbage").map_err(Rejection::from),
        Err(Rejection::Malformed(_))
    ));
    for cut in [1, 10, w.genesis.bytes.len() / 2, w.genesis.bytes.len() - 1] {
        let e = SignedRecord::decode(&w.genesis.bytes[..cut]).map_err(Rejection::from);
        assert!(
            matches!(e, Err(Rejection::Malformed(_))),
            "cut {cut}: {e:?}"
        );
    }
    // Trailing bytes would mint a second id for the same record.
    let mut long = w.genesis.bytes.clone();
    long.push(0);
    assert!(matches!(
        SignedRecord::decode(&long).map_err(Rejection::from),
        Err(Rejection::Malformed(_))
    ));
    assert_eq!(SignedRecord::decode(&w.genesis.bytes).unwrap(), w.genesis);
}

#[test]
fn oversized() {
    let big = vec![0u8; MAX_RECORD_BYTES + 1];
    assert!(matches!(
        SignedRecord::decode(&big).map_err(Rejection::from),
        Err(Rejection::Oversized { .. })
    ));
}

#[test]
fn unsupported_format() {
    let w = world();
    let mut r = w.next_op(Body::DefineNamespace {
        namespace: "x".into(),
        owners: vec![w.op.public()],
    });
    r.format = RECORD_FORMAT + 1;
    let s = SignedRecord::sign(&w.op, r);
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::UnsupportedFormat(_))
    ));
}

#[test]
fn wrong_network() {
    let w = world();
    let mut r = w.next_op(Body::DefineNamespace {
        namespace: "x".into(),
        owners: vec![w.op.public()],
    });
    r.network = Some(RecordId::of(b"other network"));
    let s = SignedRecord::sign(&w.op, r);
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::WrongNetwork { .. })
    ));
}

#[test]
fn not_genesis() {
    let w = world();
    let other = SignedRecord::sign(
        &w.op,
        rec(
            None,
            OPERATOR_LOG,
            0,
            None,
            Body::OperatorInit {
                operators: vec![w.op.public()],
                nonce: ByteBuf::from(vec![1; 16]),
            },
        ),
    );
    assert!(matches!(
        apply_operator(&w.net, None, &other, NOW),
        Err(Rejection::NotGenesis(_))
    ));
}

#[test]
fn unknown_signer() {
    let w = world();
    let s = SignedRecord::sign(
        &key(9),
        w.next_op(Body::DefineNamespace {
            namespace: "x".into(),
            owners: vec![w.op.public()],
        }),
    );
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::UnknownSigner(_))
    ));
    // A genesis must be signed by one of the keys it names.
    let g = SignedRecord::sign(&key(9), w.genesis.record.clone());
    assert!(matches!(
        apply_operator(&g.id, None, &g, NOW),
        Err(Rejection::UnknownSigner(_))
    ));
}

#[test]
fn not_allowed_in_namespace() {
    let w = world();
    let r = SignedRecord::sign(
        &key(9),
        rec(
            Some(w.net),
            "acme:x",
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(matches!(
        apply_package(&w.state, None, &r, NOW),
        Err(Rejection::NotAllowedInNamespace { .. })
    ));
    // The operator does not own acme either: ownership is per namespace.
    let r = SignedRecord::sign(
        &w.op,
        rec(
            Some(w.net),
            "acme:x",
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(matches!(
        apply_package(&w.state, None, &r, NOW),
        Err(Rejection::NotAllowedInNamespace { .. })
    ));
}

#[test]
fn namespace_not_defined_and_exists() {
    let w = world();
    let r = SignedRecord::sign(
        &w.owner,
        rec(
            Some(w.net),
            "nope:x",
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(matches!(
        apply_package(&w.state, None, &r, NOW),
        Err(Rejection::NamespaceNotDefined(_))
    ));
    let again = SignedRecord::sign(
        &w.op,
        w.next_op(Body::DefineNamespace {
            namespace: "acme".into(),
            owners: vec![w.op.public()],
        }),
    );
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &again, NOW),
        Err(Rejection::NamespaceExists(_))
    ));
}

#[test]
fn malformed_names() {
    let w = world();
    let r = SignedRecord::sign(
        &w.owner,
        rec(
            Some(w.net),
            "Acme:X",
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(matches!(
        apply_package(&w.state, None, &r, NOW),
        Err(Rejection::MalformedName(_))
    ));
    let d = SignedRecord::sign(
        &w.op,
        w.next_op(Body::DefineNamespace {
            namespace: "bad_ns".into(),
            owners: vec![w.op.public()],
        }),
    );
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &d, NOW),
        Err(Rejection::MalformedName(_))
    ));
}

#[test]
fn malformed_version() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let r = SignedRecord::sign(
        &w.owner,
        w.next_pkg(&s, Body::Release(release("1.0", b"a"))),
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s), &r, NOW),
        Err(Rejection::MalformedVersion(_))
    ));
}

#[test]
fn wrong_prev_gap_and_stale() {
    let w = world();
    let mut r = w.next_op(Body::DefineNamespace {
        namespace: "x".into(),
        owners: vec![w.op.public()],
    });
    r.prev = Some(RecordId::of(b"elsewhere"));
    let s = SignedRecord::sign(&w.op, r.clone());
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::WrongPrev { .. })
    ));
    r.prev = Some(w.state.head.id);
    r.seq += 1;
    let s = SignedRecord::sign(&w.op, r.clone());
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::Gap {
            expected: 2,
            got: 3,
            ..
        })
    ));
    r.seq = 1;
    let s = SignedRecord::sign(&w.op, r);
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::Stale { seq: 1, .. })
    ));
}

#[test]
fn version_exists() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let r1 = SignedRecord::sign(
        &w.owner,
        w.next_pkg(&s, Body::Release(release("1.0.0", b"a"))),
    );
    let s1 = apply_package(&w.state, Some(&s), &r1, NOW).unwrap();
    let r2 = SignedRecord::sign(
        &w.owner,
        w.next_pkg(&s1, Body::Release(release("1.0.0", b"b"))),
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s1), &r2, NOW),
        Err(Rejection::VersionExists { .. })
    ));
}

#[test]
fn misplaced_bodies() {
    let w = world();
    // A release as the first record of a package log.
    let r = SignedRecord::sign(
        &w.owner,
        rec(
            Some(w.net),
            "acme:x",
            0,
            None,
            Body::Release(release("1.0.0", b"a")),
        ),
    );
    assert!(matches!(
        apply_package(&w.state, None, &r, NOW),
        Err(Rejection::Misplaced { .. })
    ));
    // A second init.
    let (_, s) = w.init("acme:x");
    let r = SignedRecord::sign(
        &w.owner,
        w.next_pkg(
            &s,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s), &r, NOW),
        Err(Rejection::Misplaced { .. })
    ));
    // A release in the operator log, and a second genesis.
    let r = SignedRecord::sign(&w.op, w.next_op(Body::Release(release("1.0.0", b"a"))));
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &r, NOW),
        Err(Rejection::Misplaced { .. })
    ));
    let r = SignedRecord::sign(&w.op, w.next_op(w.genesis.record.body.clone()));
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &r, NOW),
        Err(Rejection::Misplaced { .. })
    ));
    // A package record in the operator log's place.
    let r = SignedRecord::sign(
        &w.op,
        rec(
            Some(w.net),
            "acme:x",
            2,
            Some(w.state.head.id),
            Body::DefineNamespace {
                namespace: "y".into(),
                owners: vec![w.op.public()],
            },
        ),
    );
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &r, NOW),
        Err(Rejection::Misplaced { .. })
    ));
}

#[test]
fn bad_release_fields() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let cases: [fn(&mut Release); 5] = [
        |r| r.chunks = ByteBuf::from(vec![0; 31]),
        |r| r.chunk_size = 4096,
        |r| r.size = MAX_BLOB_BYTES + 1,
        |r| r.content = ContentId::of(b"other"),
        |r| r.kind = PackageKind::Wit,
    ];
    for (i, mutate) in cases.iter().enumerate() {
        let mut rel = release("1.0.0", b"abc");
        mutate(&mut rel);
        let r = SignedRecord::sign(&w.owner, w.next_pkg(&s, Body::Release(rel)));
        let e = apply_package(&w.state, Some(&s), &r, NOW);
        assert!(
            matches!(e, Err(Rejection::BadRelease(_))),
            "case {i}: {e:?}"
        );
    }
}

#[test]
fn over_limits() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let mut rel = release("1.0.0", b"abc");
    rel.description = Some("d".repeat(MAX_DESCRIPTION_BYTES + 1));
    let r = SignedRecord::sign(&w.owner, w.next_pkg(&s, Body::Release(rel)));
    assert!(matches!(
        apply_package(&w.state, Some(&s), &r, NOW),
        Err(Rejection::OverLimit(_))
    ));
    let d = SignedRecord::sign(
        &w.op,
        w.next_op(Body::DefineNamespace {
            namespace: "x".into(),
            owners: vec![],
        }),
    );
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &d, NOW),
        Err(Rejection::OverLimit(_))
    ));
}

#[test]
fn future_timestamp() {
    let w = world();
    let mut r = w.next_op(Body::DefineNamespace {
        namespace: "x".into(),
        owners: vec![w.op.public()],
    });
    r.time_ms = NOW + MAX_CLOCK_SKEW_MS + 1;
    let s = SignedRecord::sign(&w.op, r.clone());
    assert!(matches!(
        apply_operator(&w.net, Some(&w.state), &s, NOW),
        Err(Rejection::FutureTimestamp { .. })
    ));
    r.time_ms = NOW + MAX_CLOCK_SKEW_MS;
    let s = SignedRecord::sign(&w.op, r);
    assert!(apply_operator(&w.net, Some(&w.state), &s, NOW).is_ok());
}
