//! Snapshot tests on real redb files and blob stores: export of a filtered subset,
//! import into a fresh index, and a refusal per kind of hostile snapshot, each leaving
//! the importing node exactly as it was.

use std::fs;
use std::path::{Path, PathBuf};

use ferry_protocol::component::PackageKind;
use ferry_protocol::filter::{Filter, Pattern};
use ferry_protocol::record::{Body, OPERATOR_LOG, Release};
use ferry_protocol::{ContentId, Keypair, NetworkId, RecordId, SignedRecord, chunk};
use serde_bytes::ByteBuf;

use super::*;
use crate::blob_store::{BlobError, BlobStore};
use crate::index::tests::{NOW, sign};
use crate::index::{BatchError, Index};

fn release(version: &str, bytes: &[u8]) -> Body {
    Body::Release(Release {
        version: version.into(),
        kind: PackageKind::Component,
        content: ContentId::of(bytes),
        size: bytes.len() as u64,
        chunk_size: chunk::CHUNK_SIZE,
        chunks: ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
        description: Some(format!("release {version}")),
        license: None,
        summary: Some(Default::default()),
        attachments: Default::default(),
    })
}

/// An exporting node: index and blob store of a network with namespaces `wasi` and
/// `acme`, and three packages.
struct Source {
    dir: tempfile::TempDir,
    index: Index,
    blobs: BlobStore,
    op: Keypair,
    net: NetworkId,
}

impl Source {
    fn new() -> Self {
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
        let net = genesis.id;
        let index = Index::open(&dir.path().join("index.redb"), net).unwrap();
        index.ingest(&genesis, NOW).unwrap();
        let mut prev = genesis.id;
        for (seq, ns) in [(1, "wasi"), (2, "acme")] {
            let def = sign(
                &op,
                Some(net),
                OPERATOR_LOG,
                seq,
                Some(prev),
                Body::DefineNamespace {
                    namespace: ns.into(),
                    owners: vec![op.public()],
                },
            );
            index.ingest(&def, NOW).unwrap();
            prev = def.id;
        }
        let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
        Self {
            dir,
            index,
            blobs,
            op,
            net,
        }
    }

    /// Publishes `pkg@1.0.0` with `bytes`, storing the blob when `hold`.
    fn publish(&self, pkg: &str, bytes: &[u8], hold: bool) -> SignedRecord {
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
        let rec = sign(
            &self.op,
            Some(self.net),
            pkg,
            1,
            Some(init.id),
            release("1.0.0", bytes),
        );
        self.index.ingest(&rec, NOW).unwrap();
        if hold {
            self.blobs.put(bytes).unwrap();
        }
        rec
    }

    fn export(&self, name: &str, patterns: &[&str]) -> (PathBuf, Manifest) {
        let filter = Filter::new(
            patterns
                .iter()
                .map(|p| p.parse::<Pattern>().unwrap())
                .collect(),
        );
        let out = self.dir.path().join(name);
        let m = export(&self.index, &self.blobs, &filter, &out, NOW).unwrap();
        (out, m)
    }
}

/// A fresh importing node of the same network that has never seen any record.
struct Target {
    dir: tempfile::TempDir,
    index: Index,
    blobs: BlobStore,
}

impl Target {
    fn new(net: NetworkId) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb"), net).unwrap();
        let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
        Self { dir, index, blobs }
    }

    fn import(&self, snap: &Path) -> Result<Imported, ImportError> {
        Snapshot::open(snap)?.import(&self.index, &self.blobs, NOW)
    }

    /// Asserts that the node holds nothing: no log, no blob, no staged copy.
    fn assert_untouched(&self) {
        assert_eq!(
            self.index.heads(None, 100).unwrap().0,
            vec![],
            "no log was stored"
        );
        assert!(self.blobs.list().is_empty(), "no blob was stored");
        let tmp = self.dir.path().join("blobs").join("tmp");
        assert_eq!(
            fs::read_dir(tmp).unwrap().count(),
            0,
            "no staged copy is left"
        );
    }
}

/// A source with `wasi:http` (held), `wasi:io` (not held) and `acme:x` (held), and a
/// `wasi:*` snapshot of it.
fn exported() -> (Source, PathBuf, Manifest) {
    let s = Source::new();
    s.publish("wasi:http", b"http bytes", true);
    s.publish("wasi:io", b"io bytes", false);
    s.publish("acme:x", b"acme bytes", true);
    let (dir, m) = s.export("snap", &["wasi:*"]);
    (s, dir, m)
}

fn read_records(dir: &Path) -> Vec<ByteBuf> {
    ciborium::from_reader(fs::read(dir.join(RECORDS_FILE)).unwrap().as_slice()).unwrap()
}

/// Rewrites records.cbor and fixes the manifest's digest and count, as a forger would.
fn write_records(dir: &Path, records: &[ByteBuf]) {
    let mut cbor = Vec::new();
    ciborium::into_writer(&records, &mut cbor).unwrap();
    fs::write(dir.join(RECORDS_FILE), &cbor).unwrap();
    let mut m: Manifest =
        serde_json::from_slice(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    m.records.sha256 = hex::encode(ferry_protocol::content_id::sha256(&cbor));
    m.records.count = records.len() as u64;
    fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn export_holds_exactly_the_filtered_subset() {
    let (s, dir, m) = exported();
    assert_eq!(m.network, s.net);
    assert_eq!(m.packages, ["wasi:http", "wasi:io"]);
    assert_eq!(m.blobs.len(), 1);
    assert_eq!(m.blobs[0].cid, ContentId::of(b"http bytes"));
    assert_eq!(m.missing.len(), 1, "wasi:io's blob is named as missing");
    assert_eq!(m.missing[0].blob.cid, ContentId::of(b"io bytes"));
    // Operator log (3) and two package logs (2 each); acme:x is left out.
    assert_eq!(m.records.count, 7);
    let logs: Vec<String> = read_records(&dir)
        .iter()
        .map(|b| SignedRecord::decode(b).unwrap().record.log)
        .collect();
    assert!(!logs.iter().any(|l| l == "acme:x"), "{logs:?}");
    let files: Vec<String> = fs::read_dir(dir.join(BLOBS_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [ContentId::of(b"http bytes").to_string()]);
    // Exporting into a directory that holds files is refused.
    let filter = Filter::new(vec!["wasi".parse().unwrap()]);
    assert!(matches!(
        export(&s.index, &s.blobs, &filter, &dir, NOW),
        Err(ExportError::NotEmpty(_))
    ));
}

#[test]
fn import_makes_a_fresh_node_hold_the_subset_and_is_idempotent() {
    let (s, dir, _) = exported();
    let t = Target::new(s.net);
    let r = t.import(&dir).unwrap();
    assert_eq!((r.records, r.new_records), (7, 7));
    assert_eq!(r.new_blobs, [ContentId::of(b"http bytes")]);
    let pkgs: Vec<String> = t
        .index
        .packages()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(pkgs, ["wasi:http", "wasi:io"]);
    assert_eq!(
        t.index
            .releases_by_content(&ContentId::of(b"http bytes"))
            .unwrap()
            .len(),
        1
    );
    assert!(t.blobs.has(&ContentId::of(b"http bytes")));
    assert_eq!(t.blobs.list().len(), 1);
    let again = t.import(&dir).unwrap();
    assert_eq!(
        (again.new_records, again.new_blobs.len(), again.known_blobs),
        (0, 0, 1)
    );
}

#[test]
fn tampered_blob_is_refused_whole() {
    let (s, dir, m) = exported();
    let path = dir.join(BLOBS_DIR).join(m.blobs[0].cid.to_string());
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, bytes).unwrap();
    let t = Target::new(s.net);
    let err = t.import(&dir).unwrap_err();
    assert!(
        matches!(&err, ImportError::Blob { path: p, source: BlobError::Mismatch(_) } if *p == path),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    t.assert_untouched();
}

#[test]
fn forged_records_are_refused_whole() {
    let (s, dir, _) = exported();
    let mut records = read_records(&dir);
    // Replace wasi:http's release by one a stranger signed, fixing every digest.
    let stranger = Keypair::from_seed([9; 32]);
    let pos = records
        .iter()
        .position(|b| {
            let r = SignedRecord::decode(b).unwrap();
            r.record.log == "wasi:http" && r.record.seq == 1
        })
        .unwrap();
    let orig = SignedRecord::decode(&records[pos]).unwrap();
    let forged = sign(
        &stranger,
        Some(s.net),
        "wasi:http",
        1,
        orig.record.prev,
        release("1.0.0", b"http bytes"),
    );
    records[pos] = ByteBuf::from(forged.bytes);
    write_records(&dir, &records);
    let t = Target::new(s.net);
    let err = t.import(&dir).unwrap_err();
    assert!(
        matches!(&err, ImportError::Record { source: BatchError::Rejected { position, .. }, .. } if *position == pos),
        "{err}"
    );
    assert!(err.to_string().contains("records.cbor"), "{err}");
    t.assert_untouched();

    // A record whose signature does not verify.
    let mut bad = orig.bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    records[pos] = ByteBuf::from(bad);
    write_records(&dir, &records);
    let err = t.import(&dir).unwrap_err();
    assert!(err.to_string().contains(&format!("record #{pos}")), "{err}");
    t.assert_untouched();

    // A changed records file whose digest was not fixed.
    records[pos] = ByteBuf::from(orig.bytes);
    write_records(&dir, &records);
    fs::write(dir.join(RECORDS_FILE), b"\x80").unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    t.assert_untouched();
}

#[test]
fn records_of_another_network_are_refused() {
    let (s, dir, _) = exported();
    let other = Target::new(RecordId::of(b"another network"));
    assert!(matches!(
        other.import(&dir),
        Err(ImportError::WrongNetwork { .. })
    ));
    other.assert_untouched();
    // Genesis of another network in place of ours.
    let mut records = read_records(&dir);
    let key = Keypair::from_seed([5; 32]);
    records[0] = ByteBuf::from(
        sign(
            &key,
            None,
            OPERATOR_LOG,
            0,
            None,
            Body::OperatorInit {
                operators: vec![key.public()],
                nonce: ByteBuf::from(vec![1; 16]),
            },
        )
        .bytes,
    );
    write_records(&dir, &records);
    let t = Target::new(s.net);
    let err = t.import(&dir).unwrap_err();
    assert!(err.to_string().contains("record #0"), "{err}");
    t.assert_untouched();
}

#[cfg(unix)]
#[test]
fn path_tricks_are_refused() {
    let (s, dir, m) = exported();
    let t = Target::new(s.net);
    let cid = m.blobs[0].cid.to_string();
    let blob = dir.join(BLOBS_DIR).join(&cid);
    let outside = s.dir.path().join("outside");
    fs::rename(&blob, &outside).unwrap();

    // A link to a file elsewhere, even one with the right bytes.
    std::os::unix::fs::symlink(&outside, &blob).unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(err.to_string().contains("links are refused"), "{err}");
    t.assert_untouched();
    fs::remove_file(&blob).unwrap();
    fs::copy(&outside, &blob).unwrap();

    // The same blob under another spelling of its id.
    let alias = dir.join(BLOBS_DIR).join(m.blobs[0].cid.to_sha256());
    fs::rename(&blob, &alias).unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(
        err.to_string().contains("not named by a content id"),
        "{err}"
    );
    t.assert_untouched();
    fs::rename(&alias, &blob).unwrap();

    // Stray files, in blobs/ and beside the manifest.
    for stray in [dir.join(BLOBS_DIR).join("notes.txt"), dir.join("extra")] {
        fs::write(&stray, b"x").unwrap();
        let err = t.import(&dir).unwrap_err();
        assert!(
            err.to_string().contains(&stray.display().to_string()),
            "{err}"
        );
        t.assert_untouched();
        fs::remove_file(&stray).unwrap();
    }

    // The records file as a link.
    let records = dir.join(RECORDS_FILE);
    let moved = s.dir.path().join("records-elsewhere");
    fs::rename(&records, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &records).unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(
        err.to_string().contains(&records.display().to_string()),
        "{err}"
    );
    t.assert_untouched();
    fs::remove_file(&records).unwrap();
    fs::rename(&moved, &records).unwrap();

    // A manifest that names a path instead of a blob id does not parse.
    let text = fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap();
    fs::write(
        dir.join(MANIFEST_FILE),
        text.replace(&cid, "../../etc/passwd"),
    )
    .unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(err.to_string().contains("not a snapshot manifest"), "{err}");
    t.assert_untouched();
    fs::write(dir.join(MANIFEST_FILE), text).unwrap();

    // After all that, the untouched snapshot still imports.
    t.import(&dir).unwrap();
}

#[test]
fn oversize_files_are_refused_before_reading() {
    let (s, dir, m) = exported();
    let t = Target::new(s.net);
    // Sparse files: huge lengths that cost no disk.
    let blob = dir.join(BLOBS_DIR).join(m.blobs[0].cid.to_string());
    let saved = fs::read(&blob).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let err = t.import(&dir).unwrap_err();
    assert!(
        matches!(
            &err,
            ImportError::Blob {
                source: BlobError::WrongSize { larger: true, .. },
                ..
            }
        ),
        "{err}"
    );
    t.assert_untouched();
    fs::write(&blob, saved).unwrap();

    for (file, limit) in [
        (RECORDS_FILE, MAX_RECORDS_FILE_BYTES),
        (MANIFEST_FILE, MAX_MANIFEST_BYTES),
    ] {
        let path = dir.join(file);
        let saved = fs::read(&path).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(limit + 1)
            .unwrap();
        let err = t.import(&dir).unwrap_err();
        assert!(err.to_string().contains("over the"), "{file}: {err}");
        t.assert_untouched();
        fs::write(&path, saved).unwrap();
    }
    t.import(&dir).unwrap();
}

#[test]
fn blobs_no_release_names_are_refused() {
    let (s, dir, _) = exported();
    // A blob of a package outside the snapshot, listed and present: no release in the
    // records names it, so it could be anything.
    let acme = ContentId::of(b"acme bytes");
    fs::write(dir.join(BLOBS_DIR).join(acme.to_string()), b"acme bytes").unwrap();
    let mut m: Manifest =
        serde_json::from_slice(&fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    m.blobs.push(BlobInfo {
        cid: acme,
        size: 10,
        package: "acme:x".into(),
        version: "1.0.0".into(),
        role: "content".into(),
    });
    fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
    let t = Target::new(s.net);
    let err = t.import(&dir).unwrap_err();
    assert!(
        err.to_string().contains("no release in records.cbor names"),
        "{err}"
    );
    t.assert_untouched();
}
