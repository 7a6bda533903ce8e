//! Three in-process nodes over the memory transport: gossip, fetch, counters, and a
//! partition that cuts a node off and heals.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::component::{self, PackageKind};
use ferry_protocol::record::Attachments;
use ferry_protocol::{ContentId, Namespace, PackageName, chunk};

use super::{EmbeddedConfig, EmbeddedNode, Gate};
use crate::command::Draft;
use crate::data_dir::DataDir;

fn component(tag: &str) -> Vec<u8> {
    let wit = format!("package sim:fixture;\nworld w {{\n  export f-{tag}: func() -> u32;\n}}\n");
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("fixture.wit", &wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

fn draft(node: &EmbeddedNode, package: &str, version: &str, bytes: &[u8]) -> Draft {
    let checked = component::check(bytes).unwrap();
    let content = node.blobs().put(bytes).unwrap();
    Draft {
        package: package.parse::<PackageName>().unwrap(),
        version: version.parse().unwrap(),
        kind: PackageKind::Component,
        content,
        size: bytes.len() as u64,
        chunks: chunk::digests(bytes, chunk::CHUNK_SIZE),
        description: None,
        license: None,
        summary: checked.summary,
        attachments: Attachments::default(),
        extra_blobs: Vec::new(),
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_release(node: &EmbeddedNode, package: &str, version: &str) -> bool {
    node.index()
        .release(package, version)
        .ok()
        .flatten()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_nodes_gossip_fetch_count_and_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| tmp.path().join(format!("n{i}"))).collect();
    let network = crate::init_new_network(&DataDir::open(&dirs[0]).unwrap()).unwrap();
    for d in &dirs[1..] {
        crate::init_join(&DataDir::open(d).unwrap(), network).unwrap();
    }
    let gate = Arc::new(Gate::new());
    let start = |i: usize, bootstrap: Vec<_>| {
        let mut cfg = EmbeddedConfig::new(&dirs[i], 47_100 + i as u64);
        cfg.bootstrap = bootstrap;
        cfg.gate = Some(gate.clone());
        EmbeddedNode::start(cfg).unwrap()
    };
    let a = start(0, vec![]);
    let b = start(1, vec![a.addr().clone()]);
    let c = start(2, vec![a.addr().clone()]);
    wait_until("both joiners know the genesis", || {
        [&b, &c]
            .iter()
            .all(|n| n.index().operator_state().unwrap().is_some())
    })
    .await;

    let ns: Namespace = "sim".parse().unwrap();
    a.handle()
        .define_namespace(ns, vec![a.publisher()])
        .await
        .unwrap();
    let bytes = component("one");
    let entry = a
        .handle()
        .publish(draft(&a, "sim:app", "1.0.0", &bytes))
        .await
        .unwrap();
    wait_until("b indexes sim:app@1.0.0", || {
        has_release(&b, "sim:app", "1.0.0")
    })
    .await;
    b.handle().fetch(entry.clone()).await.unwrap();
    let stored = std::fs::read(b.blobs().path(&entry.content).unwrap()).unwrap();
    assert_eq!(ContentId::of(&stored), entry.content);
    assert!(b.traffic().sent() > 0 && b.traffic().received() > 0);
    assert!(a.gossip().published >= 1, "{:?}", a.gossip());

    // Cut c off from a and b: its connections drop and redials are refused.
    gate.split([(a.peer_id(), 0), (b.peer_id(), 0), (c.peer_id(), 1)]);
    let mut c_alone = false;
    for _ in 0..400 {
        if c.handle().peers().await.is_empty() {
            c_alone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c_alone, "c still has peers after the split");
    let bytes = component("two");
    a.handle()
        .publish(draft(&a, "sim:app", "1.1.0", &bytes))
        .await
        .unwrap();
    wait_until("b indexes sim:app@1.1.0", || {
        has_release(&b, "sim:app", "1.1.0")
    })
    .await;
    assert!(
        !has_release(&c, "sim:app", "1.1.0"),
        "c got a release across the partition"
    );
    gate.heal();
    wait_until("c catches up after the heal", || {
        has_release(&c, "sim:app", "1.1.0")
    })
    .await;
    assert_eq!(
        c.index().head("sim:app").unwrap().map(|h| h.0),
        a.index().head("sim:app").unwrap().map(|h| h.0)
    );

    // A stopped node releases its files: the same directory starts again.
    let port = 47_102;
    c.shutdown().await;
    let mut cfg = EmbeddedConfig::new(&dirs[2], port);
    cfg.bootstrap = vec![a.addr().clone()];
    let c = EmbeddedNode::start(cfg).unwrap();
    assert!(has_release(&c, "sim:app", "1.1.0"));
    for n in [a, b, c] {
        n.shutdown().await;
    }
}
