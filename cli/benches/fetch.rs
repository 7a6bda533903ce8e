//! Fetch throughput (from one, two and three providers) and publish propagation across
//! real nodes on 127.0.0.1.
//!
//! Every figure is printed beside a baseline measured in the same run: node-to-node
//! fetch throughput as a ratio to a raw loopback TCP copy of the same bytes (no
//! encryption, no hashing, no disk), so the number says what Ferry's verification,
//! chunking, noise/yamux and fsync cost on this machine rather than how fast the
//! machine is. Propagation is the time from `publish` returning on node A until node C,
//! which bootstraps only from B, lists the release.
//!
//! Run: `cargo bench -p ferry-cli --bench fetch` (set FERRY_CORPUS to include the
//! corpus's largest component; FERRY_BENCH_MIB to change the large blob's size).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../../tests/integration/support.rs"]
mod support;

use support::{Net, Node, small_component, wait_until, with_custom_section};

const MIB: f64 = 1024.0 * 1024.0;

/// Best-of-3 time to copy `bytes` over a plain loopback TCP connection.
fn raw_tcp_copy(bytes: &[u8]) -> Duration {
    (0..3)
        .map(|_| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let payload = bytes.to_vec();
            let start = Instant::now();
            let sender = std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.write_all(&payload).expect("write");
            });
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = Vec::with_capacity(bytes.len());
            conn.read_to_end(&mut buf).expect("read");
            let t = start.elapsed();
            sender.join().expect("sender");
            assert_eq!(buf.len(), bytes.len());
            t
        })
        .min()
        .unwrap_or_default()
}

/// Time for `node` to hold `cid` after asking it over the API (node-to-node transfer,
/// chunk verification, fsync and the final whole-blob check).
fn node_fetch(node: &Node, cid: &str) -> Duration {
    let url = format!("{}/v1/fetch", node.api());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let start = Instant::now();
        let resp = client
            .post(&url)
            .json(&serde_json::json!({ "spec": cid }))
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .expect("fetch request");
        assert!(
            resp.status().is_success(),
            "fetch failed: {}",
            resp.text().await.unwrap_or_default()
        );
        start.elapsed()
    })
}

/// Waits until `node` knows `pkg` and is connected to at least `peers` peers.
fn wait_for(node: &Node, pkg: &str, peers: u64) {
    wait_until(Duration::from_secs(120), "a reader to be ready", || {
        node.ferry(&["--json", "info", pkg]).status.success()
            && node.ferry_json(&["node", "status"])["peers"].as_u64() >= Some(peers)
    });
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&[a.tcp_addr()]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[b.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "bench"]);

    // Propagation A -> C (C knows only B).
    let file = net.path("small.wasm");
    let mut times = Vec::new();
    for i in 0..7 {
        std::fs::write(&file, small_component(&format!("p{i}"))).expect("write");
        let pkg = format!("bench:prop{i}");
        a.ferry_json(&[
            "publish",
            file.to_str().unwrap_or_default(),
            "--package",
            &pkg,
            "--version",
            "1.0.0",
        ]);
        let start = Instant::now();
        wait_until(Duration::from_secs(60), "propagation to C", || {
            c.ferry(&["--json", "info", &pkg]).status.success()
        });
        times.push(start.elapsed());
    }
    println!(
        "publish -> visible on 3rd node (C bootstraps from B only): median {:.0} ms, max {:.0} ms over {} releases (an upper bound: it includes one `ferry info` call, about 10 ms)",
        median(times.clone()).as_secs_f64() * 1e3,
        times
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
        times.len()
    );

    // Throughput. The corpus's largest component from one provider, then a large
    // generated one from one, two and three providers: B fetches it from A alone, D from
    // A and B, E from A, B and D. Each figure is a ratio to a raw loopback TCP copy of
    // the same bytes, measured in this run.
    println!(
        "\n{:<40} {:>9} {:>10} {:>12} {:>13} {:>7}",
        "payload", "providers", "size", "ferry MiB/s", "raw TCP MiB/s", "ratio"
    );
    let report = |label: &str, providers: usize, bytes: &[u8], raw: Duration, t: Duration| {
        let size = bytes.len() as f64 / MIB;
        let (f, r) = (size / t.as_secs_f64(), size / raw.as_secs_f64());
        println!(
            "{label:<40} {providers:>9} {:>6.1} MiB {f:>12.1} {r:>13.1} {:>7.3}",
            size,
            f / r
        );
    };
    // Where the time goes: the chunk transfer alone (first request to last verified
    // chunk), against the whole fetch (which adds fsync, the rest of the whole-blob
    // hash and the one-time check of the component against its signed summary).
    let split = |n: &Node, cid: &str, t: Duration| {
        let s = n.ferry_json(&["node", "status"]);
        let d = s["transfer"]["downloads"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["cid"] == cid)
            .cloned()
            .unwrap_or_default();
        let ms = d["transfer_ms"].as_u64().unwrap_or(0);
        let bytes = d["received_bytes"].as_u64().unwrap_or(0) as f64 / MIB;
        println!(
            "{:>40}   transfer {ms} ms ({:.1} MiB/s) of {} ms; chunks per provider {:?}",
            "",
            bytes / (ms.max(1) as f64 / 1e3),
            t.as_millis(),
            d["providers"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, p)| p["chunks"].as_u64().unwrap_or(0))
                .filter(|c| *c > 0)
                .collect::<Vec<_>>()
        );
    };
    let publish = |label: &str, pkg: &str, bytes: &[u8], readers: &[&Node]| -> String {
        let path = net.path(&format!("{}.wasm", pkg.replace(':', "-")));
        std::fs::write(&path, bytes).expect("write payload");
        let v = a.ferry_json(&[
            "publish",
            path.to_str().unwrap_or_default(),
            "--package",
            pkg,
            "--version",
            "1.0.0",
        ]);
        for r in readers {
            wait_until(
                Duration::from_secs(120),
                &format!("{label} reaches a reader"),
                || r.ferry(&["--json", "info", pkg]).status.success(),
            );
        }
        v["cid"].as_str().expect("cid").to_string()
    };
    if let Some(dir) = std::env::var_os("FERRY_CORPUS") {
        let p = std::path::Path::new(&dir).join("components/jco/async-read-resource-stream.wasm");
        if let Ok(bytes) = std::fs::read(&p) {
            let label = "corpus async-read-resource-stream.wasm";
            let cid = publish(label, "bench:corpus", &bytes, &[&b]);
            let raw = raw_tcp_copy(&bytes);
            report(label, 1, &bytes, raw, node_fetch(&b, &cid));
        }
    }
    let mib: usize = std::env::var("FERRY_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let label = format!("generated {mib} MiB component");
    let bytes = with_custom_section(small_component("big"), mib << 20, 7);
    let cid = publish(&label, "bench:big", &bytes, &[&b]);
    let raw = raw_tcp_copy(&bytes);
    let t = node_fetch(&b, &cid);
    report(&label, 1, &bytes, raw, t);
    split(&b, &cid, t);
    let mut d = Node::join(net.path("d"), &a.network);
    d.start(&[a.tcp_addr(), b.tcp_addr()]);
    wait_for(&d, "bench:big", 2);
    let t = node_fetch(&d, &cid);
    report(&label, 2, &bytes, raw, t);
    split(&d, &cid, t);
    let mut e = Node::join(net.path("e"), &a.network);
    e.start(&[a.tcp_addr(), b.tcp_addr(), d.tcp_addr()]);
    wait_for(&e, "bench:big", 3);
    let t = node_fetch(&e, &cid);
    report(&label, 3, &bytes, raw, t);
    split(&e, &cid, t);
    drop((d, e));

    // Provider-bound: every provider capped at CAP MiB/s, as behind a slow uplink, so
    // the figure shows what parallel chunks buy when providers (not this machine's two
    // cores) are the limit. P publishes; F fetches from P, H from P and F, J from all
    // three.
    let cap: u64 = std::env::var("FERRY_BENCH_CAP_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let capped_mib = (mib / 2).max(1);
    let cap_arg = cap.to_string();
    let capped = ["--max-upload-rate", cap_arg.as_str()];
    let mut p = Node::join(net.path("p"), &a.network);
    p.start_with(&[a.tcp_addr()], &capped);
    let p_key = p.ferry_json(&["key", "show"])["publisher"]
        .as_str()
        .expect("key")
        .to_string();
    a.ferry_json(&["namespace", "define", "capped", "--owner", &p_key]);
    wait_until(Duration::from_secs(60), "P to learn its namespace", || {
        p.ferry_json(&["node", "status"])["namespaces"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "capped"))
    });
    let bytes = with_custom_section(small_component("capped"), capped_mib << 20, 9);
    let path = net.path("capped.wasm");
    std::fs::write(&path, &bytes).expect("write payload");
    let cid = p.ferry_json(&[
        "publish",
        path.to_str().unwrap_or_default(),
        "--package",
        "capped:big",
        "--version",
        "1.0.0",
    ])["cid"]
        .as_str()
        .expect("cid")
        .to_string();
    println!(
        "\nevery provider capped at {cap} MiB/s ({capped_mib} MiB blob): throughput and speed-up over one provider"
    );
    let mut f = Node::join(net.path("f"), &a.network);
    f.start_with(&[p.tcp_addr()], &capped);
    wait_for(&f, "capped:big", 1);
    let one = node_fetch(&f, &cid);
    let size = bytes.len() as f64 / MIB;
    let line = |n: usize, t: Duration| {
        println!(
            "  from {n} provider(s): {:>7.1} MiB/s  x{:.2}",
            size / t.as_secs_f64(),
            one.as_secs_f64() / t.as_secs_f64()
        );
    };
    line(1, one);
    split(&f, &cid, one);
    let mut h = Node::join(net.path("h"), &a.network);
    h.start_with(&[p.tcp_addr(), f.tcp_addr()], &capped);
    wait_for(&h, "capped:big", 2);
    let t = node_fetch(&h, &cid);
    line(2, t);
    split(&h, &cid, t);
    let mut j = Node::join(net.path("j"), &a.network);
    j.start(&[p.tcp_addr(), f.tcp_addr(), h.tcp_addr()]);
    wait_for(&j, "capped:big", 3);
    let t = node_fetch(&j, &cid);
    line(3, t);
    split(&j, &cid, t);
    drop((p, f, h, j));
    drop((a, b, c));
}
