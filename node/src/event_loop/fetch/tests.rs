//! Downloads on a real event loop, redb index and blob store, without peers.

use std::time::Duration;

use ferry_protocol::component::PackageKind;
use ferry_protocol::record::Attachments;
use ferry_protocol::{ContentId, Keypair, RecordId, chunk};
use tokio::sync::oneshot;

use crate::event_loop::gc::tests::fixture;
use crate::index::ReleaseEntry;

fn entry_of(bytes: &[u8]) -> ReleaseEntry {
    ReleaseEntry {
        package: "acme:app".parse().expect("name"),
        version: semver::Version::new(1, 0, 0),
        kind: PackageKind::Component,
        content: ContentId::of(bytes),
        size: bytes.len() as u64,
        chunks: chunk::digests(bytes, chunk::CHUNK_SIZE),
        description: None,
        license: None,
        publisher: Keypair::from_seed([9; 32]).public(),
        record: RecordId::of(b"release"),
        time_ms: 0,
        summary: None,
        attachments: Attachments::default(),
    }
}

/// Every chunk of a download can be on disk before the download runs: a chunk that
/// arrived after an earlier attempt gave up, or a crash between the last write and
/// the rename. With no chunk left to ask for, nothing would ever finish it; found by
/// the 200-node simulation, where such downloads hung until the end of the run.
#[tokio::test]
async fn a_download_whose_chunks_are_all_on_disk_finishes_without_peers() {
    let mut f = fixture(None);
    let bytes = vec![7u8; 3000];
    let entry = entry_of(&bytes);
    let id = entry.content;
    let partial = f
        .shared
        .blobs
        .begin(id, entry.size, &entry.chunks)
        .expect("partial");
    partial.write_chunk(0, &bytes).expect("a verified chunk");
    drop(partial);
    assert!(!f.shared.blobs.has(&id));

    let (tx, mut rx) = oneshot::channel();
    f.event_loop.start_fetch(entry, tx);
    // The final check runs on a blocking thread and reports to the loop.
    let (done, res) =
        tokio::time::timeout(Duration::from_secs(10), f.event_loop.finished_rx.recv())
            .await
            .expect("the download finishes without any peer")
            .expect("a result");
    assert_eq!(done, id);
    f.event_loop.on_finished(done, res);
    assert!(
        matches!(rx.try_recv(), Ok(Ok(()))),
        "the waiter is told it is stored"
    );
    assert!(f.shared.blobs.has(&id) && f.shared.blobs.partials().is_empty());
    let path = f.shared.blobs.path(&id).expect("stored");
    assert_eq!(std::fs::read(path).expect("stored bytes"), bytes);
}
