//! Collection on a real event loop, redb index and blob store (no peers).

use std::sync::Arc;

use ferry_protocol::retention::Reason;
use ferry_protocol::{ContentId, Keypair, chunk};

use super::CACHE_GRACE;
use crate::blob_store::BlobStore;
use crate::command::NodeHandle;
use crate::data_dir::DataDir;
use crate::event_loop::{EventLoop, LoopConfig};
use crate::index::Index;
use crate::node::{Shared, now_ms};
use crate::swarm::{self, DialPolicy};

pub(in crate::event_loop) struct Fixture {
    _dir: tempfile::TempDir,
    pub(in crate::event_loop) shared: Arc<Shared>,
    pub(in crate::event_loop) event_loop: EventLoop,
}

pub(in crate::event_loop) fn fixture(budget: Option<u64>) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataDir::open(dir.path()).expect("data dir");
    let index = Index::open(
        &data.path("index.redb"),
        ferry_protocol::RecordId::of(b"net"),
    )
    .expect("index");
    let blobs = BlobStore::open(data.path("blobs")).expect("blob store");
    let key = Keypair::from_seed([3; 32]);
    let shared = Arc::new(Shared::new(
        Arc::new(index),
        Arc::new(blobs),
        data,
        "token".into(),
        "peer".into(),
        "http://127.0.0.1:0".into(),
        key.public(),
    ));
    let swarm = swarm::build(
        libp2p::identity::Keypair::generate_ed25519(),
        DialPolicy::LoopbackOnly,
    )
    .expect("swarm");
    let (_handle, commands) = NodeHandle::channel();
    let event_loop = EventLoop::new(LoopConfig {
        swarm,
        commands,
        shared: shared.clone(),
        key,
        bootstrap: Vec::new(),
        policy: DialPolicy::LoopbackOnly,
        fetch_timeout: crate::event_loop::DEFAULT_STALL_TIMEOUT,
        disk_budget: budget,
        probe: None,
        mirrors: None,
        max_upload_rate: None,
    });
    Fixture {
        _dir: dir,
        shared,
        event_loop,
    }
}

fn blob(tag: u8, len: usize) -> Vec<u8> {
    vec![tag; len]
}

#[tokio::test]
async fn collects_only_unheld_blobs_and_never_one_being_read() {
    let mut f = fixture(None);
    let s = f.shared.clone();
    let put = |b: &[u8]| s.blobs.put(b).expect("put");
    let cached = put(&blob(1, 100));
    let published = put(&blob(2, 200));
    let unheld = put(&blob(3, 300));
    let read = put(&blob(4, 400));
    s.index.touch_cache(&cached, now_ms()).expect("cache");
    s.index
        .mark_published(&[published], now_ms())
        .expect("published");
    // A partial download nothing runs or holds is garbage as well.
    let orphan = blob(5, 50);
    let orphan_id = ContentId::of(&orphan);
    let partial = s
        .blobs
        .begin(orphan_id, 50, &chunk::digests(&orphan, chunk::CHUNK_SIZE))
        .expect("partial");
    partial.write_chunk(0, &orphan).expect("a verified chunk");
    drop(partial);

    let guard = s.serving(read);
    let dry = f.event_loop.collect(true).expect("dry run");
    assert_eq!((dry.count, dry.bytes), (2, 350), "{dry:?}");
    assert!(s.blobs.has(&unheld) && s.blobs.partials() == vec![orphan_id]);

    let done = f.event_loop.collect(false).expect("gc");
    let freed: Vec<&str> = done.freed.iter().map(|b| b.cid.as_str()).collect();
    assert_eq!(freed.len(), 2, "{done:?}");
    assert!(freed.contains(&unheld.to_string().as_str()));
    assert!(
        done.freed
            .iter()
            .any(|b| b.partial && b.cid == orphan_id.to_string())
    );
    assert!(!s.blobs.has(&unheld) && s.blobs.partials().is_empty());
    assert!(s.blobs.has(&cached) && s.blobs.has(&published) && s.blobs.has(&read));
    assert_eq!(done.kept_bytes, 700);

    // Once nobody reads it, the unheld blob goes too.
    drop(guard);
    let done = f.event_loop.collect(false).expect("gc");
    assert_eq!(done.freed.len(), 1);
    assert_eq!(done.freed[0].cid, read.to_string());
    assert!(!s.blobs.has(&read));
}

#[tokio::test]
async fn a_budget_evicts_old_cache_entries_never_published_ones() {
    let mut f = fixture(Some(250));
    let s = f.shared.clone();
    let old = now_ms() - 10 * CACHE_GRACE.as_millis() as u64;
    let oldest = s.blobs.put(&blob(1, 100)).expect("put");
    let older = s.blobs.put(&blob(2, 100)).expect("put");
    let recent = s.blobs.put(&blob(3, 100)).expect("put");
    let own = s.blobs.put(&blob(4, 200)).expect("put");
    s.index.touch_cache(&oldest, old).expect("cache");
    s.index.touch_cache(&older, old + 1).expect("cache");
    s.index.touch_cache(&recent, now_ms()).expect("cache");
    s.index.mark_published(&[own], 0).expect("published");

    let r = f.event_loop.collect(false).expect("gc");
    // 500 held bytes over a 250 budget: the two old cache entries go, oldest first;
    // the recent one is spared for now, the published one always.
    let order: Vec<(String, Reason)> = r.freed.iter().map(|b| (b.cid.clone(), b.reason)).collect();
    assert_eq!(
        order,
        vec![
            (oldest.to_string(), Reason::Evicted),
            (older.to_string(), Reason::Evicted)
        ]
    );
    assert!(r.over_budget && r.spared == 1, "{r:?}");
    assert!(s.blobs.has(&recent) && s.blobs.has(&own));
    let cache = s.index.cache().expect("cache");
    assert!(!cache.contains_key(&oldest) && cache.contains_key(&recent));
}
