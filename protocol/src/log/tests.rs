//! One test per rejection rule, plus the happy path.

use super::*;
use crate::chunk;
use crate::envelope::MAX_RECORD_BYTES;
use crate::record::{Body, OPERATOR_LOG, Perm, Record, Release, Target};
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
        summary: Some(crate::component::Summary::default()),
        attachments: Default::default(),
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
    let cases: [fn(&mut Release); 7] = [
        |r| r.summary = None,
        |r| {
            r.attachments.readme = Some(crate::record::Attachment {
                content: ContentId::of(b"readme"),
                size: 6,
                chunks: ByteBuf::from(chunk::digests(b"other!", chunk::CHUNK_SIZE)),
            })
        },
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

// ---- permissions, yanks, policy, deletion, forks, attestations ----

impl World {
    fn op_record(&self, state: &OperatorState, body: Body) -> SignedRecord {
        SignedRecord::sign(
            &self.op,
            rec(
                Some(self.net),
                OPERATOR_LOG,
                state.head.seq + 1,
                Some(state.head.id),
                body,
            ),
        )
    }

    fn apply_op(&self, state: &OperatorState, body: Body) -> Result<OperatorState, Rejection> {
        apply_operator(&self.net, Some(state), &self.op_record(state, body), NOW)
    }

    fn pkg_by(&self, key: &crate::Keypair, s: &PackageState, body: Body) -> SignedRecord {
        SignedRecord::sign(key, self.next_pkg(s, body))
    }
}

#[test]
fn grant_lets_another_key_release_and_revoke_stops_it() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let dev = key(5);
    // Without a grant: not allowed in the namespace.
    let r = w.pkg_by(&dev, &s, Body::Release(release("1.0.0", b"a")));
    assert!(matches!(
        apply_package(&w.state, Some(&s), &r, NOW),
        Err(Rejection::NotAllowedInNamespace { .. })
    ));
    // A grantee cannot grant.
    let g = w.pkg_by(
        &dev,
        &s,
        Body::Grant {
            key: dev.public(),
            perms: vec![Perm::Release],
        },
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s), &g, NOW),
        Err(Rejection::NotAllowedInNamespace { .. })
    ));
    let g = w.pkg_by(
        &w.owner,
        &s,
        Body::Grant {
            key: dev.public(),
            perms: vec![Perm::Release],
        },
    );
    let s1 = apply_package(&w.state, Some(&s), &g, NOW).unwrap();
    let r = w.pkg_by(&dev, &s1, Body::Release(release("1.0.0", b"a")));
    let s2 = apply_package(&w.state, Some(&s1), &r, NOW).unwrap();
    let v = &s2.versions[&semver::Version::new(1, 0, 0)];
    assert_eq!(
        (v.signer, v.authority),
        (dev.public(), g.id),
        "the grant is the authority"
    );
    // Release only: yanking needs its own permission.
    let y = w.pkg_by(
        &dev,
        &s2,
        Body::Yank {
            version: "1.0.0".into(),
            reason: None,
        },
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s2), &y, NOW),
        Err(Rejection::MissingPermission {
            perm: Perm::Yank,
            ..
        })
    ));
    // Rotation: revoke the old key; its history stays, its new records are refused.
    let rv = w.pkg_by(&w.owner, &s2, Body::Revoke { key: dev.public() });
    let s3 = apply_package(&w.state, Some(&s2), &rv, NOW).unwrap();
    assert!(s3.versions.contains_key(&semver::Version::new(1, 0, 0)));
    let r = w.pkg_by(&dev, &s3, Body::Release(release("1.1.0", b"b")));
    assert!(matches!(
        apply_package(&w.state, Some(&s3), &r, NOW),
        Err(Rejection::RevokedKey { .. })
    ));
    let again = w.pkg_by(&w.owner, &s3, Body::Revoke { key: dev.public() });
    assert!(matches!(
        apply_package(&w.state, Some(&s3), &again, NOW),
        Err(Rejection::BadGrant(_))
    ));
}

#[test]
fn namespace_and_operator_grants() {
    let w = world();
    let new_owner = key(6);
    let s1 = w
        .apply_op(
            &w.state,
            Body::GrantNamespace {
                namespace: "acme".into(),
                key: new_owner.public(),
            },
        )
        .unwrap();
    let init = SignedRecord::sign(
        &new_owner,
        rec(
            Some(w.net),
            "acme:y",
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        ),
    );
    assert!(apply_package(&s1, None, &init, NOW).is_ok());
    let s2 = w
        .apply_op(
            &s1,
            Body::RevokeNamespace {
                namespace: "acme".into(),
                key: new_owner.public(),
            },
        )
        .unwrap();
    assert!(matches!(
        apply_package(&s2, None, &init, NOW),
        Err(Rejection::RevokedKey { .. })
    ));
    assert!(matches!(
        w.apply_op(
            &s2,
            Body::GrantNamespace {
                namespace: "nope".into(),
                key: new_owner.public()
            }
        ),
        Err(Rejection::NamespaceNotDefined(_))
    ));
    // Operators: rotate to a new key, the old one is then refused.
    let op2 = key(7);
    let s3 = w
        .apply_op(&s2, Body::GrantOperator { key: op2.public() })
        .unwrap();
    let s4 = w
        .apply_op(&s3, Body::RevokeOperator { key: w.op.public() })
        .unwrap();
    let r = w.op_record(&s4, Body::SetPolicy { require_spdx: true });
    assert!(matches!(
        apply_operator(&w.net, Some(&s4), &r, NOW),
        Err(Rejection::RevokedKey { .. })
    ));
    let r = SignedRecord::sign(
        &op2,
        rec(
            Some(w.net),
            OPERATOR_LOG,
            s4.head.seq + 1,
            Some(s4.head.id),
            Body::RevokeOperator { key: op2.public() },
        ),
    );
    assert!(
        matches!(
            apply_operator(&w.net, Some(&s4), &r, NOW),
            Err(Rejection::BadGrant(_))
        ),
        "the last operator stays"
    );
}

#[test]
fn yank_and_unyank() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let r = w.pkg_by(&w.owner, &s, Body::Release(release("1.0.0", b"a")));
    let s = apply_package(&w.state, Some(&s), &r, NOW).unwrap();
    let y = w.pkg_by(
        &w.owner,
        &s,
        Body::Yank {
            version: "1.0.0".into(),
            reason: Some("CVE".into()),
        },
    );
    let s1 = apply_package(&w.state, Some(&s), &y, NOW).unwrap();
    assert_eq!(
        s1.versions[&semver::Version::new(1, 0, 0)]
            .yanked
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("CVE")
    );
    let y2 = w.pkg_by(
        &w.owner,
        &s1,
        Body::Yank {
            version: "1.0.0".into(),
            reason: None,
        },
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s1), &y2, NOW),
        Err(Rejection::BadYank(_))
    ));
    let y3 = w.pkg_by(
        &w.owner,
        &s1,
        Body::Yank {
            version: "9.0.0".into(),
            reason: None,
        },
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s1), &y3, NOW),
        Err(Rejection::BadYank(_))
    ));
    let u = w.pkg_by(
        &w.owner,
        &s1,
        Body::Unyank {
            version: "1.0.0".into(),
        },
    );
    let s2 = apply_package(&w.state, Some(&s1), &u, NOW).unwrap();
    assert!(s2.versions[&semver::Version::new(1, 0, 0)].yanked.is_none());
    let u2 = w.pkg_by(
        &w.owner,
        &s2,
        Body::Unyank {
            version: "1.0.0".into(),
        },
    );
    assert!(matches!(
        apply_package(&w.state, Some(&s2), &u2, NOW),
        Err(Rejection::BadYank(_))
    ));
}

#[test]
fn license_policy() {
    let w = world();
    let op = w
        .apply_op(&w.state, Body::SetPolicy { require_spdx: true })
        .unwrap();
    let init = SignedRecord::sign(
        &w.owner,
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
    let s = apply_package(&op, None, &init, NOW).unwrap();
    let mut rel = release("1.0.0", b"a");
    rel.license = None;
    let r = w.pkg_by(&w.owner, &s, Body::Release(rel.clone()));
    assert!(matches!(
        apply_package(&op, Some(&s), &r, NOW),
        Err(Rejection::LicenseRequired { .. })
    ));
    rel.license = Some("MIT OR Bogus-License-9".into());
    let r = w.pkg_by(&w.owner, &s, Body::Release(rel.clone()));
    assert!(matches!(
        apply_package(&op, Some(&s), &r, NOW),
        Err(Rejection::InvalidLicense { .. })
    ));
    rel.license = Some("Apache-2.0 WITH LLVM-exception OR MIT".into());
    let r = w.pkg_by(&w.owner, &s, Body::Release(rel));
    assert!(apply_package(&op, Some(&s), &r, NOW).is_ok());
}

#[test]
fn deletions_are_recorded_and_looked_up() {
    let w = world();
    let bad = release("1.0.0", b"malware");
    let op = w
        .apply_op(
            &w.state,
            Body::Delete {
                target: Target::Content {
                    content: bad.content,
                },
                reason: "malware".into(),
            },
        )
        .unwrap();
    assert_eq!(
        op.deletion("acme:x", Some("1.0.0"), Some(&bad.content))
            .unwrap()
            .reason,
        "malware"
    );
    assert!(
        op.deletion("acme:x", Some("1.0.0"), Some(&ContentId::of(b"fine")))
            .is_none()
    );
    let op2 = w
        .apply_op(
            &op,
            Body::Delete {
                target: Target::Package {
                    package: "acme:x".into(),
                },
                reason: "spam".into(),
            },
        )
        .unwrap();
    assert_eq!(op2.deletion("acme:x", None, None).unwrap().reason, "spam");
    let op3 = w
        .apply_op(
            &op2,
            Body::Delete {
                target: Target::Version {
                    package: "acme:y".into(),
                    version: "2.0.0".into(),
                },
                reason: "typo".into(),
            },
        )
        .unwrap();
    assert!(op3.deletion("acme:y", Some("2.0.0"), None).is_some());
    assert!(op3.deletion("acme:y", Some("2.0.1"), None).is_none());
    assert!(matches!(
        w.apply_op(
            &op2,
            Body::Delete {
                target: Target::Package {
                    package: "acme:x".into()
                },
                reason: " ".into()
            }
        ),
        Err(Rejection::OverLimit(_))
    ));
    assert!(matches!(
        w.apply_op(
            &op2,
            Body::Delete {
                target: Target::Package {
                    package: "Bad".into()
                },
                reason: "x".into()
            }
        ),
        Err(Rejection::MalformedName(_))
    ));
}

#[test]
fn forked_logs_refuse_everything_until_resolved() {
    let w = world();
    let (_, s) = w.init("acme:x");
    let a = w.pkg_by(&w.owner, &s, Body::Release(release("1.0.0", b"a")));
    let b = w.pkg_by(&w.owner, &s, Body::Release(release("1.0.0", b"b")));
    let mut ids = vec![a.id, b.id];
    ids.sort();
    let f = forked(
        Some(&s),
        Fork {
            seq: 1,
            candidates: ids,
        },
    )
    .unwrap();
    // The conflicting records themselves are known evidence; anything else is refused.
    assert!(matches!(
        apply_package(&w.state, Some(&f), &a, NOW),
        Err(Rejection::Stale { .. })
    ));
    let c = w.pkg_by(&w.owner, &s, Body::Release(release("1.0.1", b"c")));
    assert!(matches!(
        apply_package(&w.state, Some(&f), &c, NOW),
        Err(Rejection::Forked { seq: 1, .. })
    ));
    // An owner resolves by keeping `a`.
    let res = SignedRecord::sign(
        &w.owner,
        rec(
            Some(w.net),
            "acme:x",
            2,
            Some(a.id),
            Body::ResolveFork { keep: a.id },
        ),
    );
    let s2 = resolve_fork(&w.state, &f, &a, &res, NOW).unwrap();
    assert!(s2.forked.is_none());
    assert_eq!(s2.head.id, res.id);
    assert_eq!(
        s2.versions[&semver::Version::new(1, 0, 0)].content,
        ContentId::of(b"a")
    );
    // A stranger cannot resolve, and a resolution must keep a candidate.
    let res = SignedRecord::sign(
        &key(8),
        rec(
            Some(w.net),
            "acme:x",
            2,
            Some(a.id),
            Body::ResolveFork { keep: a.id },
        ),
    );
    assert!(resolve_fork(&w.state, &f, &a, &res, NOW).is_err());
    let res = SignedRecord::sign(
        &w.owner,
        rec(
            Some(w.net),
            "acme:x",
            2,
            Some(c.id),
            Body::ResolveFork { keep: c.id },
        ),
    );
    assert!(matches!(
        resolve_fork(&w.state, &f, &c, &res, NOW),
        Err(Rejection::BadGrant(_))
    ));
}

#[test]
fn attestations_live_in_the_attesters_own_log() {
    use crate::record::{Attestation, attest_log};
    let w = world();
    let reviewer = key(11);
    let att = |log: String, seq: u64, prev, claim: &str| {
        let body = Body::Attest(Attestation {
            package: "acme:x".into(),
            version: "1.0.0".into(),
            release: RecordId::of(b"release"),
            claim: claim.into(),
            data: None,
        });
        rec(Some(w.net), &log, seq, prev, body)
    };
    let r = SignedRecord::sign(
        &reviewer,
        att(attest_log(&reviewer.public()), 0, None, "reviewed"),
    );
    let s = apply_attest(&w.net, None, &r, true, NOW).unwrap();
    assert_eq!(s.key, reviewer.public());
    assert!(matches!(
        apply_attest(&w.net, None, &r, false, NOW),
        Err(Rejection::UnknownRelease(_))
    ));
    // Writing into someone else's attester log.
    let forged = SignedRecord::sign(
        &key(12),
        att(attest_log(&reviewer.public()), 1, Some(r.id), "x"),
    );
    assert!(matches!(
        apply_attest(&w.net, Some(&s), &forged, true, NOW),
        Err(Rejection::UnknownSigner(_))
    ));
    let empty = SignedRecord::sign(
        &reviewer,
        att(attest_log(&reviewer.public()), 1, Some(r.id), " "),
    );
    assert!(matches!(
        apply_attest(&w.net, Some(&s), &empty, true, NOW),
        Err(Rejection::OverLimit(_))
    ));
}
