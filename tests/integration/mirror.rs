//! Mirrors and snapshots across real daemons on 127.0.0.1.
//!
//! * A snapshot exported from an upstream node with `--filter 'wasi:*'`, imported on a
//!   fresh node that never had a peer, serves fetches by name and by CID; tampered
//!   copies of it are refused whole.
//! * A node of another network mirrors an upstream network live with `--filter
//!   'wasi:*'`: its users find, inspect and fetch exactly the wasi packages (tagged with
//!   the upstream network), its blob store holds exactly their blobs, a later upstream
//!   release arrives on its own, and an upstream node that knows only the mirror's
//!   address gets the subset from it.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::integration::support::{
    DEADLINE, Net, Node, blob_files, cid_of, sha256_file, sha256_hex, small_component, stderr_text,
    wait_until,
};

/// One published package: name, bytes' CID and SHA-256.
struct Pkg {
    name: &'static str,
    cid: String,
    sha256: String,
}

/// Defines the namespaces of `packages` on `node` (the operator) and publishes each as
/// version 1.0.0 of a component built for it.
fn publish_all(net: &Net, node: &Node, packages: &[&'static str]) -> Vec<Pkg> {
    let mut namespaces: Vec<&str> = packages
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    namespaces.dedup();
    for ns in namespaces {
        node.ferry_json(&["namespace", "define", ns]);
    }
    packages
        .iter()
        .map(|name| publish(net, node, name, "1.0.0"))
        .collect()
}

fn publish(net: &Net, node: &Node, name: &'static str, version: &str) -> Pkg {
    let tag = format!("{}-{}", name.replace(':', "-"), version.replace('.', "-"));
    let bytes = small_component(&tag);
    let file = net.path(&format!("{tag}.wasm"));
    fs::write(&file, &bytes).expect("writing a component");
    let v = node.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        name,
        "--version",
        version,
        "--description",
        &format!("fixture {name}"),
    ]);
    assert_eq!(v["cid"], cid_of(&bytes).as_str());
    Pkg {
        name,
        cid: cid_of(&bytes),
        sha256: sha256_hex(&bytes),
    }
}

/// Copies a snapshot directory (two levels: files and blobs/).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("blobs")).expect("creating the copy");
    for e in fs::read_dir(from).expect("reading the snapshot").flatten() {
        if e.path().is_file() {
            fs::copy(e.path(), to.join(e.file_name())).expect("copying a file");
        }
    }
    for e in fs::read_dir(from.join("blobs"))
        .expect("reading blobs/")
        .flatten()
    {
        fs::copy(e.path(), to.join("blobs").join(e.file_name())).expect("copying a blob");
    }
}

/// `ferry fetch SPEC -o FILE` on `node`; asserts the bytes are `p`'s.
fn fetch_verified(node: &Node, spec: &str, out: &Path, p: &Pkg) {
    let v = node.ferry_json(&["fetch", spec, "-o", &out.display().to_string()]);
    assert_eq!(v["cid"], p.cid.as_str(), "fetch {spec}: {v}");
    assert_eq!(v["package"], p.name, "fetch {spec}: {v}");
    assert_eq!(sha256_file(out), p.sha256, "fetch {spec}: bytes differ");
}

#[test]
fn snapshot_carries_a_filtered_subset_to_an_offline_node() {
    let net = Net::new();
    let mut up = Node::init_new_network(net.path("up"));
    up.start(&[]);
    let pkgs = publish_all(&net, &up, &["wasi:http", "wasi:io", "acme:tool"]);
    let (wasi, acme): (Vec<&Pkg>, Vec<&Pkg>) =
        pkgs.iter().partition(|p| p.name.starts_with("wasi:"));
    // Upstream holds every blob it published; the snapshot gets only the wasi ones.
    let snap = net.path("snap");
    let m = up.ferry_json(&[
        "mirror",
        "export",
        "--filter",
        "wasi:*",
        "-o",
        &snap.display().to_string(),
    ]);
    assert_eq!(m["network"], up.network.as_str(), "{m}");
    assert_eq!(
        m["packages"],
        serde_json::json!(["wasi:http", "wasi:io"]),
        "{m}"
    );
    let mut listed: Vec<String> = m["blobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["cid"].as_str().map(String::from))
        .collect();
    listed.sort();
    let mut want: Vec<String> = wasi.iter().map(|p| p.cid.clone()).collect();
    want.sort();
    assert_eq!(listed, want, "the snapshot holds exactly the wasi blobs");
    let mut files: Vec<String> = fs::read_dir(snap.join("blobs"))
        .expect("blobs/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, want);

    // A fresh node of the same network, never started: tampered copies are refused
    // whole, each with one line naming the file at fault.
    let mut off = Node::join(net.path("off"), &up.network);
    let bad_blob = net.path("bad-blob");
    copy_dir(&snap, &bad_blob);
    let victim = bad_blob.join("blobs").join(&wasi[0].cid);
    let mut bytes = fs::read(&victim).expect("a blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&victim, bytes).expect("tampering");
    let bad_extra = net.path("bad-extra");
    copy_dir(&snap, &bad_extra);
    let stray = bad_extra.join("blobs").join(&acme[0].cid);
    fs::copy(up.dir.join("blobs").join(&acme[0].cid), &stray).expect("adding a blob");
    for (dir, culprit) in [(&bad_blob, &victim), (&bad_extra, &stray)] {
        let out = off.ferry(&["mirror", "import", &dir.display().to_string()]);
        let err = stderr_text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "a tampered snapshot is refused: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&culprit.display().to_string()) && err.contains("nothing was imported"),
            "{err}"
        );
        assert_eq!(
            blob_files(&off.dir),
            Vec::<String>::new(),
            "a refused import stores no blob"
        );
    }

    // Without a running node, `mirror add` only records the mirror for the next start;
    // a bad pattern is a usage error.
    let elsewhere = ferry_protocol::RecordId::of(b"another network").to_string();
    let bootstrap = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5";
    let v = off.ferry_json(&[
        "mirror",
        "add",
        "--network",
        &elsewhere,
        "--bootstrap",
        bootstrap,
        "--filter",
        "acme:*",
    ]);
    assert_eq!(v["running"], false, "{v}");
    let ls = off.ferry_json(&["mirror", "ls"]);
    assert_eq!(ls["mirrors"][0]["network"], elsewhere.as_str(), "{ls}");
    let out = off.ferry(&[
        "mirror",
        "add",
        "--network",
        &elsewhere,
        "--bootstrap",
        bootstrap,
        "--filter",
        "Not A Pattern",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    let out = off.ferry(&[
        "mirror",
        "add",
        "--network",
        &up.network,
        "--bootstrap",
        bootstrap,
        "--filter",
        "wasi:*",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a node does not mirror its own network"
    );
    assert!(
        stderr_text(&out).contains("already follows"),
        "{}",
        stderr_text(&out)
    );
    off.ferry_json(&["mirror", "rm", &elsewhere]);
    assert_eq!(
        off.ferry_json(&["mirror", "ls"])["mirrors"],
        serde_json::json!([])
    );

    let v = off.ferry_json(&["mirror", "import", &snap.display().to_string()]);
    assert_eq!(v["new_blobs"].as_array().map(|b| b.len()), Some(2), "{v}");
    off.start(&[]);
    let status = off.ferry_json(&["node", "status"]);
    assert_eq!(status["peers"], 0, "the offline node has no peer: {status}");
    assert_eq!(status["packages"], 2, "{status}");
    fetch_verified(&off, "wasi:http@1.0.0", &net.path("by-name.wasm"), wasi[0]);
    fetch_verified(&off, &wasi[1].cid, &net.path("by-cid.wasm"), wasi[1]);
    let hits = off.ferry_json(&["search", "fixture"]);
    let names: Vec<&str> = hits
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["package"].as_str())
        .collect();
    assert!(
        names.contains(&"wasi:http") && !names.contains(&"acme:tool"),
        "{hits}"
    );
    let out = off.ferry(&["info", "acme:tool"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "acme:tool is outside the snapshot"
    );

    // Importing again through the running node changes nothing.
    let again: Value = off.ferry_json(&["mirror", "import", &snap.display().to_string()]);
    assert_eq!(again["new_records"], 0, "{again}");
    assert_eq!(again["known_blobs"], 2, "{again}");
    let mut held = blob_files(&off.dir);
    held.sort();
    assert_eq!(
        held, want,
        "the offline node holds exactly the snapshot's blobs"
    );
}

/// The one mirror `node` lists (`ferry mirror ls --json`).
fn the_mirror(node: &Node) -> Value {
    let v = node.ferry_json(&["mirror", "ls"]);
    let list = v["mirrors"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "one mirror: {v}");
    list[0].clone()
}

/// Package names a search on `node` finds, with the network each comes from.
fn found(node: &Node, words: &str) -> Vec<(String, String)> {
    let hits = node.ferry_json(&["search", words]);
    let mut out: Vec<(String, String)> = hits
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["package"].as_str().unwrap_or("").to_string(),
                h["network"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_live_mirror_serves_exactly_its_filtered_subset() {
    let net = Net::new();
    let mut u1 = Node::init_new_network(net.path("u1"));
    u1.start(&[]);
    let mut u2 = Node::join(net.path("u2"), &u1.network);
    u2.start(&[u1.tcp_addr()]);
    let up = publish_all(&net, &u1, &["wasi:http", "wasi:io", "acme:tool"]);
    let upstream = u1.network.clone();

    // An organization's node on a network of its own, with a package of its own.
    let mut org = Node::init_new_network(net.path("org"));
    org.start(&[]);
    let own = publish_all(&net, &org, &["org:app"]);
    let v = org.ferry_json(&[
        "mirror",
        "add",
        "--network",
        &upstream,
        "--bootstrap",
        &u2.tcp_addr(),
        "--filter",
        "wasi:*",
    ]);
    assert_eq!(v["running"], true, "a running node mirrors at once: {v}");
    wait_until(
        DEADLINE,
        "the mirror to index and hold both wasi packages",
        || {
            let m = the_mirror(&org);
            m["packages"] == 2 && m["blobs"] == 2
        },
    );

    // Users of the org node see its own package and the mirrored subset, each tagged
    // with its network; nothing of acme.
    assert_eq!(
        found(&org, "fixture"),
        [
            ("org:app".to_string(), org.network.clone()),
            ("wasi:http".to_string(), upstream.clone()),
            ("wasi:io".to_string(), upstream.clone()),
        ]
    );
    let info = org.ferry_json(&["info", "wasi:http"]);
    assert_eq!(
        (&info["network"], &info["mirror"]),
        (&Value::from(upstream.as_str()), &Value::Bool(true)),
        "{info}"
    );
    assert_eq!(
        org.ferry(&["info", "acme:tool"]).status.code(),
        Some(1),
        "acme is not mirrored"
    );
    let out = org.ferry(&["info", "org:app", "--network", &upstream]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--network selects the mirror only: {}",
        stderr_text(&out)
    );
    let wasi: Vec<&Pkg> = up.iter().filter(|p| p.name.starts_with("wasi:")).collect();
    fetch_verified(&org, "wasi:io@1.0.0", &net.path("io.wasm"), wasi[1]);
    fetch_verified(&org, &wasi[0].cid, &net.path("http.wasm"), wasi[0]);
    fetch_verified(&org, "org:app", &net.path("app.wasm"), &own[0]);
    let mut want: Vec<String> = wasi
        .iter()
        .map(|p| p.cid.clone())
        .chain([own[0].cid.clone()])
        .collect();
    want.sort();
    assert_eq!(
        blob_files(&org.dir),
        want,
        "the org node holds its own blob and exactly the mirrored ones"
    );

    // A release published upstream later arrives live, bytes included; acme's do not.
    let clocks = publish(&net, &u1, "wasi:clocks", "1.0.0");
    let tool2 = publish(&net, &u1, "acme:tool", "2.0.0");
    wait_until(
        DEADLINE,
        "wasi:clocks to reach the mirror with its blob",
        || org.dir.join("blobs").join(&clocks.cid).is_file(),
    );
    assert!(org.ferry(&["info", "wasi:clocks"]).status.success());
    want.push(clocks.cid.clone());
    want.sort();
    assert_eq!(blob_files(&org.dir), want, "no acme blob: {}", tool2.cid);
    let gc = org.ferry_json(&["gc"]);
    assert_eq!(
        blob_files(&org.dir),
        want,
        "gc keeps what the mirror holds: {gc}"
    );

    // A snapshot can be taken from the mirror, and one of the mirrored network is
    // imported into the mirror.
    let snap = net.path("from-mirror");
    let m = org.ferry_json(&[
        "mirror",
        "export",
        "--network",
        &upstream,
        "--filter",
        "wasi:http",
        "-o",
        &snap.display().to_string(),
    ]);
    assert_eq!(m["network"], upstream.as_str(), "{m}");
    assert_eq!(m["blobs"].as_array().map(|b| b.len()), Some(1), "{m}");
    let v = org.ferry_json(&["mirror", "import", &snap.display().to_string()]);
    assert_eq!(
        (&v["network"], &v["new_records"]),
        (&Value::from(upstream.as_str()), &Value::from(0)),
        "{v}"
    );

    // Peers: with the upstream nodes gone, a node of the upstream network that knows
    // only the mirror's address gets exactly the subset from it.
    drop(u1);
    drop(u2);
    let addr = the_mirror(&org)["addrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .find(|a| a.contains("/tcp/"))
        .expect("the mirror listens on TCP")
        .to_string();
    let mut peer = Node::join(net.path("peer"), &upstream);
    peer.start(&[addr]);
    wait_until(DEADLINE, "the peer to learn the mirrored packages", || {
        peer.package_count() == Some(3)
    });
    assert_eq!(peer.ferry(&["info", "acme:tool"]).status.code(), Some(1));
    fetch_verified(&peer, "wasi:clocks", &net.path("peer-clocks.wasm"), &clocks);

    // The mirror survives a restart; `mirror rm` forgets it.
    assert!(org.stop());
    org.start(&[]);
    assert_eq!(the_mirror(&org)["running"], true);
    assert!(
        org.ferry(&["info", "wasi:http"]).status.success(),
        "served from the persisted index"
    );
    // Narrowing the filter narrows what the mirror serves: it starts afresh (here from
    // the peer, the only upstream node left).
    let v = org.ferry_json(&[
        "mirror",
        "add",
        "--network",
        &upstream,
        "--bootstrap",
        &peer.tcp_addr(),
        "--filter",
        "wasi:clocks",
    ]);
    assert_eq!(v["replaced"], true, "{v}");
    wait_until(
        DEADLINE,
        "the narrowed mirror to hold wasi:clocks only",
        || {
            let m = the_mirror(&org);
            m["packages"] == 1 && m["blobs"] == 1
        },
    );
    assert!(org.ferry(&["info", "wasi:clocks"]).status.success());
    assert_eq!(org.ferry(&["info", "wasi:http"]).status.code(), Some(1));
    org.ferry_json(&["mirror", "rm", &upstream]);
    assert_eq!(
        org.ferry_json(&["mirror", "ls"])["mirrors"],
        serde_json::json!([])
    );
    assert_eq!(
        found(&org, "fixture"),
        [("org:app".to_string(), org.network.clone())]
    );
    org.ferry_json(&["gc"]);
    assert_eq!(
        blob_files(&org.dir),
        [own[0].cid.clone()],
        "gc frees a removed mirror's blobs"
    );
}
