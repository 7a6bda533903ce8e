//! Pins and garbage collection over seven real daemons on 127.0.0.1.
//!
//! A (operator, publisher) and five followers with different pins: B is the
//! organization node pinning `acme:*`; C pins `wasi:*` and, added only after the burst,
//! `beta:*`; D pins everything up to 1 MiB; E has no pins (index only); F pins
//! `acme:*` too but only reaches the network through D (two hops from A); G pins
//! `acme:*` under a disk budget that its user's cache overflows. After a
//! burst of 50 releases over 5 namespaces, every pinning node must hold exactly the
//! blobs its pins admit (the files in its blob store are checked) and follow only
//! the logs they cover. Then D's pins change to `delta:*`, a large delta release
//! starts downloading while its only provider is paused, and `ferry gc` on D frees
//! every unpinned blob beside that download, which then completes, verified.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::integration::support::{
    Net, Node, blob_files, cid_of, sha256_file, sha256_hex, small_component, stderr_text,
    wait_until, with_custom_section,
};

/// Deadline for pinning nodes to converge after a burst.
const CONVERGE: Duration = Duration::from_secs(120);
const NAMESPACES: [&str; 5] = ["acme", "wasi", "beta", "gamma", "delta"];

/// One published release: package, version, cid, size.
#[derive(Clone)]
struct Rel {
    package: String,
    cid: String,
    size: u64,
}

fn publish(a: &Node, net: &Net, package: &str, version: &str, bytes: &[u8]) -> Rel {
    let file = net.path(&format!("{}-{version}.wasm", package.replace(':', "-")));
    fs::write(&file, bytes).expect("writing a component");
    let v = a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        package,
        "--version",
        version,
        "--license",
        "Apache-2.0",
    ]);
    assert_eq!(
        v["cid"],
        cid_of(bytes).as_str(),
        "publish {package}@{version}"
    );
    Rel {
        package: package.to_string(),
        cid: cid_of(bytes),
        size: bytes.len() as u64,
    }
}

/// The complete blobs in a node's store (no partial or temporary files allowed).
fn stored(node: &Node) -> BTreeSet<String> {
    blob_files(&node.dir).into_iter().collect()
}

fn cids<'a>(rels: impl IntoIterator<Item = &'a Rel>) -> BTreeSet<String> {
    rels.into_iter().map(|r| r.cid.clone()).collect()
}

fn in_ns<'a>(rels: &'a [Rel], ns: &'a [&str]) -> impl Iterator<Item = &'a Rel> + 'a {
    rels.iter()
        .filter(move |r| ns.iter().any(|n| r.package.starts_with(&format!("{n}:"))))
}

fn wait_for_blobs(node: &Node, name: &str, want: &BTreeSet<String>) {
    wait_until(
        CONVERGE,
        &format!("{name} to hold exactly its pinned blobs"),
        || stored(node) == *want,
    );
}

fn pin_ls(node: &Node) -> Vec<Value> {
    node.ferry_json(&["pin", "ls"])["pins"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn pinning_nodes_hold_exactly_their_pins_and_gc_frees_the_rest() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    for ns in NAMESPACES {
        a.ferry_json(&["namespace", "define", ns]);
    }
    let boot = [a.tcp_addr()];
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&boot);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&boot);
    let mut d = Node::join(net.path("d"), &a.network);
    d.start(&boot);
    let mut e = Node::join(net.path("e"), &a.network);
    e.start(&boot);
    let mut f = Node::join(net.path("f"), &a.network);
    f.start(&[d.tcp_addr()]);

    // The burst's components, built first so that G's disk budget can be set from
    // their sizes: 5 namespaces x 2 packages x 5 versions.
    let mut burst = Vec::new();
    for ns in NAMESPACES {
        for pkg in ["one", "two"] {
            for v in 0..5 {
                let bytes = small_component(&format!("{ns}-{pkg}-{v}"));
                burst.push((format!("{ns}:{pkg}"), format!("1.{v}.0"), bytes));
            }
        }
    }
    let size_of = |pred: &dyn Fn(&str) -> bool| -> u64 {
        burst
            .iter()
            .filter(|(p, _, _)| pred(p))
            .map(|(_, _, b)| b.len() as u64)
            .sum()
    };
    let acme_bytes = size_of(&|p| p.starts_with("acme:"));
    let beta_one = size_of(&|p| p == "beta:one") / 5;
    // G pins acme and keeps its user's cache within room for about two and a half
    // more beta:one blobs.
    let budget = acme_bytes + 2 * beta_one + beta_one / 2;
    let mut g = Node::join(net.path("g"), &a.network);
    g.start_with(&boot, &["--disk-budget", &budget.to_string()]);

    // Bad input is a usage error naming the pattern, and changes nothing.
    let out = b.ferry(&["pin", "add", "Acme:*"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("Acme:*"),
        "{}",
        stderr_text(&out)
    );
    let out = b.ferry(&["pin", "add", "acme:*", "--license", "not a license!"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("acme:*"),
        "{}",
        stderr_text(&out)
    );
    let out = b.ferry(&["pin", "rm", "acme:*"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rm of no pin: {}",
        stderr_text(&out)
    );
    assert!(
        stderr_text(&out).contains("acme:*"),
        "{}",
        stderr_text(&out)
    );
    assert!(pin_ls(&b).is_empty());

    b.ferry_json(&["pin", "add", "acme:*"]);
    c.ferry_json(&["pin", "add", "wasi"]);
    d.ferry_json(&["pin", "add", "*", "--max-size", "1MiB"]);
    f.ferry_json(&["pin", "add", "acme:*"]);
    // Re-adding replaces: the listing shows one pin with the newer filter.
    f.ferry_json(&["pin", "add", "acme:*", "--exclude", "acme:nothing-*"]);
    let fl = pin_ls(&f);
    assert_eq!(fl.len(), 1, "{fl:?}");
    assert_eq!(fl[0]["exclude"], serde_json::json!(["acme:nothing-*"]));

    g.ferry_json(&["pin", "add", "acme:*"]);
    // Follows beta's logs (so its user can fetch them) but pins none of its releases,
    // all of which are Apache-2.0.
    g.ferry_json(&["pin", "add", "beta:*", "--license", "MIT"]);

    let burst_start = std::time::Instant::now();
    let rels: Vec<Rel> = burst
        .iter()
        .map(|(p, v, bytes)| publish(&a, &net, p, v, bytes))
        .collect();
    assert_eq!(rels.len(), 50);
    let burst_done = std::time::Instant::now();
    let acme = cids(in_ns(&rels, &["acme"]));
    wait_for_blobs(&b, "B (acme:*)", &acme);
    wait_for_blobs(&f, "F (acme:*, two hops)", &acme);
    wait_for_blobs(&c, "C (wasi)", &cids(in_ns(&rels, &["wasi"])));
    wait_for_blobs(&d, "D (*)", &cids(&rels));
    println!(
        "50 publishes took {:.1} s; pinning nodes B, C, D, F held exactly their blobs {:.1} s after the last",
        (burst_done - burst_start).as_secs_f64(),
        burst_done.elapsed().as_secs_f64()
    );
    // C's second pin takes effect live and catches up on what it missed.
    c.ferry_json(&["pin", "add", "beta:*"]);
    wait_for_blobs(&c, "C (wasi, beta)", &cids(in_ns(&rels, &["wasi", "beta"])));

    // B follows only acme's logs; E (no pins) follows all and stores nothing.
    wait_until(CONVERGE, "E to index all ten packages", || {
        e.package_count() == Some(10)
    });
    assert_eq!(b.package_count(), Some(2), "B follows only acme logs");
    let out = b.ferry(&["info", "beta:one"]);
    assert_eq!(out.status.code(), Some(1), "B does not know beta:one");
    assert!(stored(&e).is_empty(), "E pins nothing: {:?}", stored(&e));
    let bl = pin_ls(&b);
    assert_eq!(bl.len(), 1);
    assert_eq!(
        (
            bl[0]["pattern"].as_str(),
            bl[0]["releases"].as_u64(),
            bl[0]["stored"].as_u64()
        ),
        (Some("acme:*"), Some(10), Some(10)),
        "{bl:?}"
    );
    assert_eq!(
        bl[0]["stored_bytes"].as_u64(),
        Some(in_ns(&rels, &["acme"]).map(|r| r.size).sum())
    );

    // A user fetch on E is a cache hold: gc keeps it, clearing the cache frees it.
    let beta = rels
        .iter()
        .find(|r| r.package == "beta:one")
        .expect("beta:one");
    let out_file = net.path("e-beta.wasm");
    e.ferry_json(&["fetch", &beta.cid, "-o", &out_file.display().to_string()]);
    assert_eq!(stored(&e), BTreeSet::from([beta.cid.clone()]));
    let report = e.ferry_json(&["gc"]);
    assert_eq!(report["count"], 0, "the cache holds it: {report}");
    let cache = e.ferry_json(&["cache", "ls"]);
    assert_eq!(cache["entries"][0]["cid"], beta.cid.as_str(), "{cache}");
    let report = e.ferry_json(&["cache", "clear"]);
    assert_eq!(
        (report["count"].as_u64(), report["bytes"].as_u64()),
        (Some(1), Some(beta.size)),
        "{report}"
    );
    assert!(stored(&e).is_empty());

    // G's disk budget: five cached beta:one blobs do not fit beside the pinned acme
    // ones, so once their grace period is over the three least recently used go, and
    // no pinned blob does.
    wait_for_blobs(&g, "G (acme:*)", &acme);
    wait_until(CONVERGE, "G to index beta:one", || {
        g.ferry(&["info", "beta:one"]).status.success()
    });
    let beta_one: Vec<&Rel> = rels.iter().filter(|r| r.package == "beta:one").collect();
    for (i, r) in beta_one.iter().enumerate() {
        let out = net.path(&format!("g-beta-{i}.wasm"));
        let v = g.ferry_json(&[
            "fetch",
            &format!("beta:one@1.{i}.0"),
            "-o",
            &out.display().to_string(),
        ]);
        assert_eq!(v["cid"], r.cid.as_str(), "{v}");
        assert_eq!(cid_of(&fs::read(&out).expect("fetched file")), r.cid);
    }
    let mut kept = acme.clone();
    kept.extend([beta_one[3].cid.clone(), beta_one[4].cid.clone()]);
    wait_for_blobs(
        &g,
        "G to evict its least recently used cache entries",
        &kept,
    );
    let cache = g.ferry_json(&["cache", "ls"]);
    assert_eq!(
        cache["entries"].as_array().map(Vec::len),
        Some(2),
        "{cache}"
    );
    assert_eq!(
        cache["entries"][0]["cid"],
        beta_one[4].cid.as_str(),
        "most recent first"
    );

    // A large delta release that D (limit 1 MiB) indexes but does not fetch.
    let big_bytes = with_custom_section(small_component("big"), 6 << 20, 42);
    let big = publish(&a, &net, "delta:big", "1.0.0", &big_bytes);
    wait_until(CONVERGE, "D to index delta:big", || {
        d.ferry(&["info", "delta:big"]).status.success()
    });
    assert!(!stored(&d).contains(&big.cid), "over D's size limit");

    // Pause the only provider, then pin delta on D: the download starts and stalls.
    a.signal("STOP");
    d.ferry_json(&["pin", "rm", "*"]);
    d.ferry_json(&["pin", "add", "delta:*"]);
    let partial = format!("partial/{}", big.cid);
    wait_until(CONVERGE, "D to start downloading delta:big", || {
        stored(&d).contains(&partial)
    });
    let delta = cids(in_ns(&rels, &["delta"]));
    let unpinned: BTreeSet<String> = cids(&rels).difference(&delta).cloned().collect();
    let dry = d.ferry_json(&["gc", "--dry-run"]);
    assert_eq!(dry["count"].as_u64(), Some(unpinned.len() as u64), "{dry}");
    assert_eq!(stored(&d).len(), 51, "a dry run removes nothing");
    let report = d.ferry_json(&["gc"]);
    let freed: BTreeSet<String> = report["freed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["cid"].as_str().map(String::from))
        .collect();
    assert_eq!(
        freed, unpinned,
        "gc frees exactly the unpinned blobs: {report}"
    );
    assert_eq!(
        report["bytes"].as_u64(),
        Some(
            rels.iter()
                .filter(|r| unpinned.contains(&r.cid))
                .map(|r| r.size)
                .sum()
        )
    );
    let mut want: BTreeSet<String> = delta.clone();
    want.insert(partial.clone());
    assert_eq!(
        stored(&d),
        want,
        "the running download's partial file is kept"
    );

    // The provider comes back: the download completes and is verified.
    a.signal("CONT");
    let mut done = delta.clone();
    done.insert(big.cid.clone());
    wait_for_blobs(&d, "D (delta:* with delta:big)", &done);
    assert_eq!(
        sha256_file(&d.dir.join("blobs").join(&big.cid)),
        sha256_hex(&big_bytes)
    );
    let out_file = net.path("d-big.wasm");
    let v = d.ferry_json(&[
        "fetch",
        "delta:big@1.0.0",
        "-o",
        &out_file.display().to_string(),
    ]);
    assert_eq!(v["cid"], big.cid.as_str(), "{v}");
    assert_eq!(sha256_file(&out_file), sha256_hex(&big_bytes));

    // The others never picked up the large delta blob, nor lost anything.
    assert_eq!(stored(&b), acme);
    assert!(stored(&e).is_empty());
    assert_eq!(stored(&g), kept, "G's budget never touched a pinned blob");
    for n in [&mut a, &mut b, &mut c, &mut d, &mut e, &mut f, &mut g] {
        assert!(n.stop(), "clean exit");
    }
}
