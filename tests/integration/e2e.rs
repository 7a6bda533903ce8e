//! End to end over the real corpus: three nodes in a line (A <- B <- C), everything
//! publishable in the corpus published on A, then found, inspected and fetched on C
//! (two hops from the publisher), and on a fourth node D that starts only after all
//! publishes. Every file the corpus marks as unpublishable must be refused by
//! `ferry publish` locally and leave no trace anywhere.
//!
//! Needs `FERRY_CORPUS`; without it the test prints a note and passes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::integration::corpus::{Corpus, Entry};
use crate::integration::support::{
    Net, Node, blob_files, cid_of, sha256_file, sha256_hex, small_component, stderr_text,
    wait_until,
};

/// Deadline for a node to learn every release of the corpus by gossip and sync.
const CATCH_UP: Duration = Duration::from_secs(180);

/// What a publish on A returned, plus the bytes' digest computed by the test.
struct Published {
    entry: Entry,
    cid: String,
    sha256: String,
    size: u64,
}

#[test]
fn corpus_published_on_a_is_found_and_fetched_two_hops_away() {
    let Some(corpus) = Corpus::from_env() else {
        return;
    };
    println!(
        "corpus: {} ({} files in MANIFEST.md)",
        corpus.root.display(),
        corpus.entries.len()
    );
    check_manifest(&corpus);
    let publishable = corpus.publishable();
    let refused = corpus.refused();

    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&[a.tcp_addr()]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[b.tcp_addr()]);
    let publisher = a.ferry_json(&["key", "show"])["publisher"]
        .as_str()
        .expect("publisher")
        .to_string();

    // The operator defines every namespace first, refused files' included, so a
    // refusal below can only come from the content check.
    for ns in corpus.namespaces() {
        let v = a.ferry_json(&["namespace", "define", &ns]);
        assert_eq!(v["namespace"], ns.as_str());
    }

    let blobs_before = blob_files(&a.dir);
    for e in &refused {
        assert_publish_refused(&a, e);
    }
    assert_eq!(
        blob_files(&a.dir),
        blobs_before,
        "refused publishes left files in A's blob store"
    );
    for e in &refused {
        assert_unknown(&a, e);
    }

    let published: Vec<Published> = publishable.iter().map(|e| publish(&a, e)).collect();
    let n = published.len() as u64;
    println!(
        "published {n} packages on A ({} refused files checked)",
        refused.len()
    );

    wait_until(
        CATCH_UP,
        "C (two hops from A) to know every published package",
        || c.package_count() == Some(n),
    );
    let extra = measure_propagation(&net, &a, &c);

    let mut compared = 0;
    for p in &published {
        check_info(&c, p, &publisher);
        compared += usize::from(check_world(&c, &corpus, p));
        check_search(&c, p);
        check_fetches(&c, p, &net.path("out-c"));
    }
    println!("info --json imports/exports equal expected-wit for {compared} components");
    assert!(
        compared >= 40,
        "only {compared} components had an expected-wit file to compare with"
    );
    for e in &refused {
        assert_unknown(&c, e);
    }

    // A node that starts after everything was published catches up through C alone.
    let mut d = Node::join(net.path("d"), &a.network);
    d.start(&[c.tcp_addr()]);
    wait_until(CATCH_UP, "D (started last) to know every package", || {
        d.package_count() == Some(n + extra)
    });
    for p in &published {
        check_info(&d, p, &publisher);
    }
    let largest = published
        .iter()
        .max_by_key(|p| p.size)
        .expect("some package");
    let wit = published
        .iter()
        .find(|p| p.entry.kind == "wit-pkg")
        .expect("a WIT package in the corpus");
    for p in [largest, wit] {
        let out = net.path("out-d");
        let v = fetch_to(
            &d,
            &format!("{}@1.0.0", p.entry.package),
            &out.join("by-name.wasm"),
        );
        assert_fetched(&v, p, &out.join("by-name.wasm"));
        let v = fetch_to(&d, &p.cid, &out.join("by-cid.wasm"));
        assert_fetched(&v, p, &out.join("by-cid.wasm"));
        assert!(
            d.dir.join("blobs").join(&p.cid).is_file(),
            "D stores {} after fetching it",
            p.cid
        );
    }
    for node in [&mut a, &mut b, &mut c, &mut d] {
        assert!(node.stop(), "SIGTERM gives a clean exit 0");
        assert!(
            !node.dir.join("node.json").exists(),
            "node.json is removed on clean shutdown"
        );
    }
}

/// Every file the manifest lists exists with the listed size, names are unique, and
/// the corpus has what this test relies on (the 3.7 MB component, WIT packages).
fn check_manifest(corpus: &Corpus) {
    let mut names = BTreeSet::new();
    let digests = corpus.listed_sha256();
    let listed: BTreeSet<String> = corpus.entries.iter().map(|e| e.rel.clone()).collect();
    assert_eq!(
        corpus.wasm_files(),
        listed,
        "every .wasm file of the corpus is in MANIFEST.md's Binaries table, and only those"
    );
    for e in &corpus.entries {
        let len = std::fs::metadata(&e.path)
            .unwrap_or_else(|err| panic!("{}: {err}", e.path.display()))
            .len();
        assert_eq!(len, e.size, "{} size differs from MANIFEST.md", e.rel);
        assert_eq!(
            digests.get(&e.rel).map(String::as_str),
            Some(sha256_file(&e.path).as_str()),
            "{} differs from the SHA-256 MANIFEST.md lists",
            e.rel
        );
        assert!(
            e.package.parse::<ferry_protocol::PackageName>().is_ok(),
            "bad derived name {} for {}",
            e.package,
            e.rel
        );
        assert!(
            names.insert(e.package.clone()),
            "two corpus files map to {}",
            e.package
        );
    }
    let publishable = corpus.publishable();
    assert!(
        publishable
            .iter()
            .any(|e| e.rel == "components/jco/async-read-resource-stream.wasm"),
        "the largest component is publishable"
    );
    assert!(
        publishable.iter().any(|e| e.kind == "wit-pkg"),
        "the corpus has WIT packages"
    );
    let refused = corpus.refused();
    for must in [
        "components/spin/fake-empty.wasm",
        "components/wasmcloud/guest.component-v0x0c.wasm",
        "components/jco/exitcode.module.wasm",
    ] {
        assert!(
            refused.iter().any(|e| e.rel == must),
            "{must} is among the refused files"
        );
    }
    assert!(
        refused
            .iter()
            .filter(|e| e.rel.starts_with("components/malformed/"))
            .count()
            >= 6
    );
}

fn publish(a: &Node, e: &Entry) -> Published {
    let path = e.path.display().to_string();
    let v = a.ferry_json(&[
        "publish",
        &path,
        "--package",
        &e.package,
        "--version",
        "1.0.0",
        "--description",
        &e.description,
        "--license",
        "Apache-2.0",
    ]);
    let bytes = std::fs::read(&e.path).expect("reading a corpus file");
    let cid = cid_of(&bytes);
    let sha256 = format!("sha256:{}", sha256_hex(&bytes));
    assert_eq!(v["cid"], cid.as_str(), "publish {}: cid", e.rel);
    assert_eq!(v["sha256"], sha256.as_str(), "publish {}: sha256", e.rel);
    assert_eq!(v["size"], e.size, "publish {}: size", e.rel);
    assert_eq!(v["package"], e.package.as_str());
    assert_eq!(v["version"], "1.0.0");
    assert!(
        v["record"].as_str().is_some_and(|r| !r.is_empty()),
        "publish {}: record id",
        e.rel
    );
    if e.kind == "wit-pkg" {
        assert_eq!(v["kind"], "wit", "publish {}: kind", e.rel);
        assert_eq!(
            v["wit_package"].as_str(),
            e.wit_package(),
            "publish {}: the WIT package it declares",
            e.rel
        );
    } else {
        assert_eq!(v["kind"], "component", "publish {}: kind", e.rel);
        assert_eq!(
            v["wit_package"],
            Value::Null,
            "publish {}: a component names no WIT package",
            e.rel
        );
    }
    Published {
        entry: e.clone(),
        cid,
        sha256,
        size: e.size,
    }
}

/// `publish` exits 1 with one stderr line naming the file, before anything is stored.
fn assert_publish_refused(a: &Node, e: &Entry) {
    let path = e.path.display().to_string();
    let out = a.ferry(&[
        "publish",
        &path,
        "--package",
        &e.package,
        "--version",
        "1.0.0",
        "--description",
        &e.description,
    ]);
    let err = stderr_text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "publishing {} ({}) must fail with exit 1; stderr: {err}",
        e.rel,
        e.kind
    );
    assert_eq!(
        err.lines().count(),
        1,
        "publishing {}: expected one stderr line, got:\n{err}",
        e.rel
    );
    assert!(
        err.contains(&path) && err.contains("cannot be published"),
        "publishing {}: stderr must name the file and say it cannot be published: {err}",
        e.rel
    );
    assert!(
        out.stdout.is_empty(),
        "publishing {}: nothing on stdout",
        e.rel
    );
}

/// The node knows nothing of a refused file: no package, no search hit.
fn assert_unknown(node: &Node, e: &Entry) {
    let (status, body) = node.http_get(&format!("/v1/packages/{}", e.package.replace(':', "%3A")));
    assert_eq!(
        status,
        404,
        "GET /v1/packages/{} on {}: {body}",
        e.package,
        node.dir.display()
    );
    let out = node.ferry(&["info", &e.package]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "info {} on {} must fail: the file was refused",
        e.package,
        node.dir.display()
    );
    assert!(
        stderr_text(&out).contains("not known"),
        "info {}: {}",
        e.package,
        stderr_text(&out)
    );
    let hits = node.ferry_json(&["search", &e.package]);
    assert!(
        !hits
            .as_array()
            .expect("search returns a list")
            .iter()
            .any(|h| h["package"] == e.package.as_str()),
        "search finds refused {}: {hits}",
        e.package
    );
    let hits = node.ferry_json(&["search", &e.tag]);
    assert_eq!(
        hits,
        Value::Array(vec![]),
        "search for the refused file's description word {} finds something",
        e.tag
    );
}

fn check_info(node: &Node, p: &Published, publisher: &str) {
    let e = &p.entry;
    let v = node.ferry_json(&["info", &e.package]);
    assert_eq!(v["package"], e.package.as_str());
    assert_eq!(
        v["kind"],
        if e.kind == "wit-pkg" {
            "wit"
        } else {
            "component"
        },
        "info {}: kind",
        e.package
    );
    assert_eq!(
        v["head"]["seq"].as_u64(),
        Some(1),
        "info {}: one release after the log's creation",
        e.package
    );
    let versions = v["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "info {}: {v}", e.package);
    let r = &versions[0];
    assert_eq!(r["version"], "1.0.0", "info {}", e.package);
    assert_eq!(r["cid"], p.cid.as_str(), "info {}: cid", e.package);
    assert_eq!(r["sha256"], p.sha256.as_str(), "info {}: sha256", e.package);
    assert_eq!(r["size"], p.size, "info {}: size", e.package);
    assert_eq!(
        r["description"],
        e.description.as_str(),
        "info {}: description",
        e.package
    );
    assert_eq!(r["license"], "Apache-2.0", "info {}: license", e.package);
    assert_eq!(r["publisher"], publisher, "info {}: publisher", e.package);
}

/// For a component with an `expected-wit` file: `info --json` on a node that never saw
/// the bytes lists exactly the imports and exports `wasm-tools component wit` printed.
fn check_world(node: &Node, corpus: &Corpus, p: &Published) -> bool {
    let Some((imports, exports)) = corpus.expected_world(&p.entry.rel) else {
        return false;
    };
    if p.entry.kind != "component" {
        return false;
    }
    let v = node.ferry_json(&["info", &format!("{}@1.0.0", p.entry.package)]);
    let r = v["versions"]
        .as_array()
        .and_then(|vs| vs.first())
        .unwrap_or(&v);
    let list = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap_or_else(|| panic!("info {}: no {k} in {r}", p.entry.package))
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    assert_eq!(list("imports"), imports, "info {}: imports", p.entry.rel);
    assert_eq!(list("exports"), exports, "info {}: exports", p.entry.rel);
    true
}

fn check_search(node: &Node, p: &Published) {
    let e = &p.entry;
    let listed = |hits: &Value| {
        hits.as_array()
            .expect("search returns a list")
            .iter()
            .any(|h| h["package"] == e.package.as_str())
    };
    let hits = node.ferry_json(&["search", &e.package]);
    assert!(
        listed(&hits),
        "search for the full name {} misses it: {hits}",
        e.package
    );
    let hits = node.ferry_json(&["search", e.name()]);
    assert!(
        listed(&hits),
        "search for the name words {} misses it: {hits}",
        e.name()
    );
    // The tag is unique and no tag is a prefix of another: exactly one hit.
    let hits = node.ferry_json(&["search", &e.tag]);
    let list = hits.as_array().expect("search returns a list");
    assert_eq!(
        list.len(),
        1,
        "search for description word {} of {}: {hits}",
        e.tag,
        e.package
    );
    assert_eq!(list[0]["package"], e.package.as_str());
    assert_eq!(list[0]["version"], "1.0.0");
    assert_eq!(list[0]["description"], e.description.as_str());
    // All words must match: the tag plus a word no package has finds nothing.
    let hits = node.ferry_json(&["search", &format!("{} zzzunmatched", e.tag)]);
    assert_eq!(
        hits,
        Value::Array(vec![]),
        "a query word no package has must empty the result"
    );
}

fn check_fetches(node: &Node, p: &Published, out_dir: &Path) {
    let stem = p.entry.package.replace(':', "-");
    for (spec, file) in [
        (
            format!("{}@^1", p.entry.package),
            format!("{stem}-by-req.wasm"),
        ),
        (p.cid.clone(), format!("{stem}-by-cid.wasm")),
        (p.sha256.clone(), format!("{stem}-by-sha.wasm")),
    ] {
        let path = out_dir.join(file);
        let v = fetch_to(node, &spec, &path);
        assert_fetched(&v, p, &path);
        std::fs::remove_file(&path).expect("removing a fetched file");
    }
}

fn fetch_to(node: &Node, spec: &str, path: &Path) -> Value {
    let out = path.display().to_string();
    node.ferry_json(&["fetch", spec, "-o", &out])
}

fn assert_fetched(v: &Value, p: &Published, path: &Path) {
    let what = &p.entry.package;
    assert_eq!(v["cid"], p.cid.as_str(), "fetch {what}: cid");
    assert_eq!(v["size"], p.size, "fetch {what}: size");
    assert_eq!(v["package"], what.as_str(), "fetch {what}: package");
    assert_eq!(v["version"], "1.0.0", "fetch {what}: version");
    assert_eq!(v["sha256"], p.sha256.as_str(), "fetch {what}: sha256");
    assert_eq!(
        v["path"],
        path.display().to_string().as_str(),
        "fetch {what}: path"
    );
    assert_eq!(
        format!("sha256:{}", sha256_file(path)),
        p.sha256,
        "fetch {what}: the file's bytes differ from the corpus file"
    );
}

/// Publishes one fresh package on A and prints how long C takes to list it
/// (informational, never asserted). Returns the number of packages it added.
fn measure_propagation(net: &Net, a: &Node, c: &Node) -> u64 {
    let bytes = small_component("propagation-probe");
    let file = net.path("probe.wasm");
    std::fs::write(&file, &bytes).expect("writing the probe");
    let peers = c.ferry_json(&["node", "status"])["peers"].clone();
    let start = Instant::now();
    a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        "jco:propagation-probe",
        "--version",
        "1.0.0",
    ]);
    let published = start.elapsed();
    wait_until(CATCH_UP, "C to list the probe package", || {
        c.ferry(&["info", "jco:propagation-probe"]).status.success()
    });
    println!(
        "propagation: jco:propagation-probe visible in C's info {} ms after A's publish returned ({} ms including the publish command; C had {peers} peer(s))",
        (start.elapsed() - published).as_millis(),
        start.elapsed().as_millis()
    );
    1
}
