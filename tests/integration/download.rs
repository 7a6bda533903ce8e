//! Fetching like a package manager, counted: the cache, interrupted downloads, lost and
//! lying providers. Every claim is checked against the nodes' transfer counters
//! (`ferry node status --json`, `transfer`), not inferred from timing.
//!
//! Providers that must be caught halfway serve at `--max-upload-rate 4` (MiB/s), so a
//! 16 MiB download takes seconds whatever the machine, and the tests wait on the
//! progress they observe.

use std::fs;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::integration::lying_peer::LyingPeer;
use crate::integration::support::{
    DEADLINE, Net, Node, cid_of, sha256_file, sha256_hex, small_component, wait_until,
    with_custom_section,
};

/// Upload rate of the providers that tests interrupt, in MiB/s.
const SLOW: &str = "4";
/// Padding of the component those tests download: 16 chunks.
const SLOW_PAYLOAD: usize = 16 << 20;
/// Deadline for a rate-limited transfer of [`SLOW_PAYLOAD`].
const SLOW_TRANSFER: Duration = Duration::from_secs(120);

fn transfer(node: &Node) -> Value {
    node.ferry_json(&["node", "status"])["transfer"].clone()
}

fn try_download_of(node: &Node, cid: &str) -> Option<Value> {
    transfer(node)["downloads"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["cid"] == cid)
        .cloned()
}

fn download_of(node: &Node, cid: &str) -> Value {
    try_download_of(node, cid)
        .unwrap_or_else(|| panic!("no download of {cid} in {}'s status", node.dir.display()))
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number `{key}` in {v}"))
}

/// Publishes `bytes` as `package@1.0.0` on `a` and waits until every node in `others`
/// knows it. Returns the CID.
fn publish(net: &Net, a: &Node, others: &[&Node], package: &str, bytes: &[u8]) -> String {
    let file = net.path(&format!("{}.wasm", package.replace(':', "-")));
    fs::write(&file, bytes).expect("writing the component");
    let v = a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        package,
        "--version",
        "1.0.0",
    ]);
    for n in others {
        wait_until(
            DEADLINE,
            &format!("{} to learn {package}", n.dir.display()),
            || n.ferry(&["info", package]).status.success(),
        );
    }
    v["cid"].as_str().expect("cid").to_string()
}

/// `(done, total)` of a running download on `node`, or `None` once it is complete.
fn progress(node: &Node, cid: &str) -> Option<(u64, u64)> {
    let (status, p) = node.http_get(&format!("/v1/progress/{cid}"));
    if status == 200 && p["complete"] == true {
        return None;
    }
    Some((
        p["done"].as_u64().unwrap_or(0),
        p["total"].as_u64().unwrap_or(u64::MAX),
    ))
}

/// Waits until the download of `cid` on `node` is between a quarter and three
/// quarters done; returns the bytes done.
fn wait_halfway(node: &Node, cid: &str) -> u64 {
    let mut at = 0;
    wait_until(
        SLOW_TRANSFER,
        "the download to be under way",
        || match progress(node, cid) {
            None => panic!("the download finished before the test could interrupt it"),
            Some((done, total)) if done >= total / 4 && done < total * 3 / 4 => {
                at = done;
                true
            }
            Some(_) => false,
        },
    );
    at
}

fn spawn_fetch(node: &Node, net: &Net, spec: &str, out: &std::path::Path) -> Child {
    let log = fs::File::create(net.path("client.log")).expect("client log");
    node.ferry_cmd(&["fetch", spec, "-o", &out.display().to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning ferry fetch")
}

#[test]
fn cached_content_is_fetched_with_no_transfer_and_a_corrupt_cache_is_repaired() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "cache"]);
    let bytes = with_custom_section(small_component("cache"), 3 << 20, 11);
    let cid = publish(&net, &a, &[&c], "cache:app", &bytes);
    let size = bytes.len() as u64;

    // Project one: a real download. `--json` on a pipe: no progress bar, nothing on stderr.
    let p1 = net.path("project1/app.wasm");
    let out = c.ferry(&[
        "--json",
        "fetch",
        "cache:app",
        "-o",
        &p1.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "fetch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress bar or other output on stderr with --json when not a TTY: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(v["cache"], "downloaded");
    assert_eq!(sha256_file(&p1), sha256_hex(&bytes));
    let d = download_of(&c, &cid);
    assert_eq!(
        num(&d, "received_bytes"),
        size,
        "the blob crossed the network once: {d}"
    );
    let t1 = transfer(&c);
    let served1 = num(&transfer(&a), "served_bytes");
    assert!(served1 >= size, "A counted what it served: {served1}");

    // Project two, same content: answered from the cache, no byte on the network.
    let p2 = net.path("project2/app.wasm");
    let v = c.ferry_json(&["fetch", "cache:app", "-o", &p2.display().to_string()]);
    assert_eq!(v["cache"], "hit", "{v}");
    assert_eq!(sha256_file(&p2), sha256_hex(&bytes));
    let t2 = transfer(&c);
    assert_eq!(
        (num(&t2, "received_bytes"), num(&t2, "received_chunks")),
        (num(&t1, "received_bytes"), num(&t1, "received_chunks")),
        "a cached fetch must not receive anything"
    );
    assert_eq!(
        num(&transfer(&a), "served_bytes"),
        served1,
        "nor make A serve anything"
    );
    assert_eq!(num(&t2, "cache_hits"), num(&t1, "cache_hits") + 1);
    println!(
        "cache: first fetch received {} bytes, second received {} more (cache hit)",
        num(&t1, "received_bytes"),
        num(&t2, "received_bytes") - num(&t1, "received_bytes")
    );

    // /metrics says the same in Prometheus text.
    let metrics = http_text(&c, "/metrics");
    assert!(
        metrics.contains(&format!(
            "ferry_blob_received_bytes_total {}",
            num(&t2, "received_bytes")
        )),
        "{metrics}"
    );

    // The cached copy rots on disk: the next fetch notices, sets it aside, downloads
    // it again, and says so.
    let stored = c.dir.join("blobs").join(&cid);
    let mut on_disk = fs::read(&stored).expect("the cached blob");
    let mid = on_disk.len() / 2;
    on_disk[mid] ^= 0x01;
    fs::write(&stored, &on_disk).expect("corrupting the cached blob");
    let p3 = net.path("project3/app.wasm");
    let v = c.ferry_json(&["fetch", "cache:app", "-o", &p3.display().to_string()]);
    assert_eq!(v["cache"], "repaired", "{v}");
    assert_eq!(
        sha256_file(&p3),
        sha256_hex(&bytes),
        "the repaired bytes are right"
    );
    assert_eq!(
        sha256_file(&stored),
        sha256_hex(&bytes),
        "and so is the cache"
    );
    let t3 = transfer(&c);
    assert_eq!(num(&t3, "quarantined"), 1);
    assert_eq!(
        num(&t3, "received_bytes"),
        num(&t2, "received_bytes") + size
    );
    assert!(
        c.dir.join("blobs").join("quarantine").join(&cid).is_file(),
        "the corrupt copy is kept aside for inspection"
    );
    assert!(
        c.log_tail(1000).contains("quarantined"),
        "the node's log says so"
    );
}

#[test]
fn a_killed_client_leaves_the_download_running_and_no_chunk_is_fetched_twice() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start_with(&[], &["--max-upload-rate", SLOW]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "slow"]);
    let bytes = with_custom_section(small_component("client"), SLOW_PAYLOAD, 21);
    let cid = publish(&net, &a, &[&c], "slow:app", &bytes);

    let out = net.path("app.wasm");
    let mut client = spawn_fetch(&c, &net, "slow:app", &out);
    let at = wait_halfway(&c, &cid);
    client.kill().expect("SIGKILL the client");
    let _ = client.wait();
    assert!(!out.exists(), "a killed client leaves no output file");

    // The node keeps downloading into the cache; the rerun finds the blob there.
    wait_until(SLOW_TRANSFER, "C to finish the download", || {
        c.dir.join("blobs").join(&cid).is_file()
    });
    let v = c.ferry_json(&["fetch", "slow:app", "-o", &out.display().to_string()]);
    assert_eq!(sha256_file(&out), sha256_hex(&bytes), "verified output");
    let d = download_of(&c, &cid);
    println!(
        "client killed at {at} bytes; rerun answered from the {}; download: {d}",
        v["cache"]
    );
    assert_eq!(v["cache"], "hit");
    assert_eq!(num(&d, "attempts"), 1, "the download was never restarted");
    assert_eq!(num(&d, "duplicate_chunks"), 0);
    assert!(
        num(&d, "received_chunks") + num(&d, "resumed_chunks") <= num(&d, "chunks") + 1,
        "at most one chunk fetched twice: {d}"
    );
    assert_eq!(num(&d, "received_chunks"), num(&d, "chunks"), "{d}");
}

#[test]
fn a_killed_node_resumes_from_its_partial_file_fetching_at_most_one_chunk_again() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start_with(&[], &["--max-upload-rate", SLOW]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "resume"]);
    let bytes = with_custom_section(small_component("resume"), SLOW_PAYLOAD, 31);
    let cid = publish(&net, &a, &[&c], "resume:app", &bytes);

    let out = net.path("app.wasm");
    let mut client = spawn_fetch(&c, &net, "resume:app", &out);
    wait_halfway(&c, &cid);
    // Freeze the provider, let what is in flight land, and read what C holds.
    a.signal("STOP");
    let mut last = u64::MAX;
    let mut before = 0;
    wait_until(DEADLINE, "C's received chunks to settle", || {
        std::thread::sleep(Duration::from_millis(300));
        before = num(&download_of(&c, &cid), "received_chunks");
        let settled = before == last;
        last = before;
        settled
    });
    c.kill();
    let _ = client.kill();
    let _ = client.wait();
    a.signal("CONT");

    c.start(&[a.tcp_addr()]);
    wait_until(SLOW_TRANSFER, "C to resume and finish by itself", || {
        c.dir.join("blobs").join(&cid).is_file()
    });
    let d = download_of(&c, &cid);
    let (resumed, received, chunks) = (
        num(&d, "resumed_chunks"),
        num(&d, "received_chunks"),
        num(&d, "chunks"),
    );
    println!("node killed holding {before} verified chunks; after restart: {d}");
    assert!(
        resumed > 0,
        "the restart resumed from the partial file: {d}"
    );
    assert!(
        before - resumed.min(before) <= 1,
        "{before} chunks were verified before the kill, {resumed} found on disk"
    );
    assert_eq!(
        resumed + received,
        chunks,
        "nothing fetched twice after the restart: {d}"
    );
    assert!(
        before + received <= chunks + 1,
        "at most one chunk fetched again overall: {before} before, {received} after, of {chunks}"
    );
    let v = c.ferry_json(&["fetch", &cid, "-o", &out.display().to_string()]);
    assert_eq!(v["cache"], "hit");
    assert_eq!(sha256_file(&out), sha256_hex(&bytes));
}

#[test]
fn a_provider_killed_halfway_leaves_the_rest_to_the_other() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start_with(&[], &["--max-upload-rate", SLOW]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start_with(&[a.tcp_addr()], &["--max-upload-rate", SLOW]);
    a.ferry_json(&["namespace", "define", "two"]);
    let bytes = with_custom_section(small_component("two"), SLOW_PAYLOAD, 41);
    let cid = publish(&net, &a, &[&b], "two:app", &bytes);
    // B becomes the second provider.
    b.ferry_json(&[
        "fetch",
        "two:app",
        "-o",
        &net.path("b.wasm").display().to_string(),
    ]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr(), b.tcp_addr()]);
    wait_until(
        DEADLINE,
        "C to learn two:app and see both providers",
        || {
            c.ferry(&["info", "two:app"]).status.success()
                && c.ferry_json(&["node", "status"])["peers"].as_u64() >= Some(2)
        },
    );
    let a_id = a.ferry_json(&["node", "status"])["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let b_id = b.ferry_json(&["node", "status"])["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();

    let out = net.path("app.wasm");
    let mut client = spawn_fetch(&c, &net, "two:app", &out);
    let from = |d: &Value, id: &str| d["providers"][id]["chunks"].as_u64().unwrap_or(0);
    // Kill A once both have served part of it and much is left.
    let mut at = 0;
    wait_until(SLOW_TRANSFER, "both providers to serve C", || {
        let Some(d) = try_download_of(&c, &cid) else {
            return false;
        };
        let (got, chunks) = (num(&d, "received_chunks"), num(&d, "chunks"));
        assert!(
            got < chunks * 3 / 4,
            "the download got too far before both providers served: {d}"
        );
        at = num(&d, "received_bytes");
        from(&d, &a_id) > 0 && from(&d, &b_id) > 0
    });
    a.kill();
    let status = client.wait().expect("waiting for the client");
    assert!(
        status.success(),
        "the fetch completes from B; see client.log"
    );
    assert_eq!(sha256_file(&out), sha256_hex(&bytes), "verified output");
    let d = download_of(&c, &cid);
    println!("A killed at {at} bytes; download: {d}");
    let (by_a, by_b) = (from(&d, &a_id), from(&d, &b_id));
    assert!(by_a > 0 && by_b > 0, "both served: {d}");
    assert_eq!(by_a + by_b, num(&d, "chunks"), "{d}");
    assert_eq!(num(&d, "duplicate_chunks"), 0);
    assert_eq!(d["state"], "complete");
    assert_eq!(cid_of(&bytes), cid);
}

#[test]
fn a_provider_serving_corrupt_chunks_is_dropped_and_penalized_and_the_download_completes() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "liar"]);
    let bytes = with_custom_section(small_component("liar"), 6 << 20, 51);
    let cid = publish(&net, &a, &[&c], "liar:app", &bytes);
    let a_id = a.ferry_json(&["node", "status"])["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();

    let liar = LyingPeer::start(bytes.clone(), &a.network, &c.tcp_addr());
    wait_until(DEADLINE, "C to be connected to the lying peer", || {
        c.ferry_json(&["node", "status"])["peer_list"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["peer_id"] == liar.peer_id.as_str())
    });

    let out = net.path("app.wasm");
    let v = c.ferry_json(&["fetch", "liar:app", "-o", &out.display().to_string()]);
    assert_eq!(v["cache"], "downloaded");
    assert_eq!(sha256_file(&out), sha256_hex(&bytes), "verified output");
    let d = download_of(&c, &cid);
    println!(
        "lying peer answered {} requests; download: {d}",
        liar.lies()
    );
    let lied = &d["providers"][liar.peer_id.as_str()];
    assert!(liar.lies() >= 1, "the liar was asked for chunks");
    assert_eq!(
        num(&d, "bad_chunks"),
        liar.lies(),
        "every lie was caught: {d}"
    );
    assert_eq!(lied["chunks"], 0, "nothing from the liar was kept: {d}");
    assert!(
        lied["dropped"]
            .as_str()
            .is_some_and(|w| w.contains("digest")),
        "the liar was dropped from the download for its bad chunk: {d}"
    );
    assert_eq!(
        d["providers"][a_id.as_str()]["chunks"].as_u64(),
        Some(num(&d, "chunks")),
        "the honest provider served every chunk: {d}"
    );
    let score = c.ferry_json(&["node", "status"])["peer_list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["peer_id"] == liar.peer_id.as_str())
        .and_then(|p| p["score"].as_f64());
    assert!(
        score.is_some_and(|s| s < 0.0),
        "the liar's gossipsub score is negative: {score:?}"
    );
    assert!(c.log_tail(1000).contains("does not match its digest"));
}

/// GET `path` on the node's API as text.
fn http_text(node: &Node, path: &str) -> String {
    let url = format!("{}{path}", node.api());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap_or_default()
    })
}
