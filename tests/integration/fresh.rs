//! The test a fresh clone relies on (no corpus): two nodes, components built
//! in-process with wit-component, published on one node and fetched on the other by
//! name, version requirement and content id; garbage is refused.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::integration::support::{
    Net, Node, blob_files, cid_of, ferry_bin, sha256_file, sha256_hex, small_component,
    stderr_text, wait_until,
};

#[test]
fn two_nodes_publish_and_fetch_a_built_component() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    let ns = a.ferry_json(&["namespace", "define", "fresh"]);
    assert_eq!(ns["namespace"], "fresh");

    // Three releases: two stable, one prerelease that "newest" must skip.
    let releases = [("1.0.0", "one"), ("1.1.0", "two"), ("2.0.0-rc.1", "three")];
    let mut published = Vec::new();
    for (version, tag) in releases {
        let bytes = small_component(tag);
        let file = net.path(&format!("{tag}.wasm"));
        fs::write(&file, &bytes).expect("writing a component");
        let v = a.ferry_json(&[
            "publish",
            &file.display().to_string(),
            "--package",
            "fresh:hello",
            "--version",
            version,
            "--description",
            "greeting component built in-process",
        ]);
        assert_eq!(v["cid"], cid_of(&bytes).as_str(), "publish {version}: cid");
        assert_eq!(v["size"], bytes.len() as u64);
        assert_eq!(v["kind"], "component");
        assert_eq!(v["version"], version);
        published.push((version, cid_of(&bytes), sha256_hex(&bytes)));
    }

    // Garbage is refused locally, names the file, and leaves nothing behind.
    let before = blob_files(&a.dir);
    let garbage = net.path("garbage.wasm");
    fs::write(&garbage, b"this is not a webassembly component").expect("writing garbage");
    let g = garbage.display().to_string();
    let out = a.ferry(&[
        "publish",
        &g,
        "--package",
        "fresh:garbage",
        "--version",
        "1.0.0",
    ]);
    let err = stderr_text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "garbage must be refused with exit 1: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one stderr line: {err}");
    assert!(
        err.contains(&g) && err.contains("cannot be published"),
        "{err}"
    );
    assert_eq!(
        blob_files(&a.dir),
        before,
        "a refused publish stores nothing"
    );
    assert_eq!(a.ferry(&["info", "fresh:garbage"]).status.code(), Some(1));

    wait_until(
        Duration::from_secs(120),
        "C to learn all three releases",
        || {
            let out = c.ferry(&["--json", "info", "fresh:hello"]);
            out.status.success()
                && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| {
                    v["versions"]
                        .as_array()
                        .is_some_and(|a| a.len() == releases.len())
                })
        },
    );
    let hits = c.ferry_json(&["search", "greeting"]);
    assert_eq!(
        hits[0]["package"], "fresh:hello",
        "search by description word on C: {hits}"
    );
    assert_eq!(
        hits[0]["version"], "1.1.0",
        "search shows the newest stable version: {hits}"
    );

    // The API before any fetch: C has the records, not the bytes.
    let first_cid = published[0].1.clone();
    assert_eq!(
        c.http_get(&format!("/v1/blobs/{first_cid}")).0,
        404,
        "C serves no blob it was never asked to fetch"
    );
    assert_eq!(
        c.http_get(&format!("/v1/progress/{first_cid}")).0,
        404,
        "no download runs and the blob is absent"
    );
    let status = c.http_get("/v1/status").1;
    assert_eq!(
        status["network"],
        a.network.as_str(),
        "C is on A's network: {status}"
    );
    assert_eq!(status["packages"], 1, "C knows one package: {status}");
    let st = c.ferry_json(&["node", "status"]);
    let info = c.node_json().expect("C's node.json");
    assert_eq!(st["network"], a.network.as_str());
    assert_eq!(st["peer_id"], info["peer_id"], "{st}");
    assert_eq!(st["addrs"], info["addrs"], "{st}");
    assert_eq!(st["api"], info["api"], "{st}");
    assert!(
        st["peers"].as_u64().is_some_and(|p| p >= 1),
        "C is connected to A: {st}"
    );
    assert_eq!(st["packages"], 1, "{st}");
    assert_eq!(
        st["namespaces"],
        serde_json::json!(["fresh"]),
        "C learned the namespace: {st}"
    );

    // `init` prints the network in text mode and refuses to run twice.
    let other = net.path("other");
    let out = std::process::Command::new(ferry_bin())
        .arg("--data-dir")
        .arg(&other)
        .args(["init", "--new-network"])
        .output()
        .expect("running ferry init");
    assert!(out.status.success(), "{}", stderr_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("network: "), "text output of init: {text}");
    let out = c.ferry(&["init", "--network", &a.network]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a second init must fail: {}",
        stderr_text(&out)
    );
    assert!(
        stderr_text(&out).contains("already initialized"),
        "{}",
        stderr_text(&out)
    );

    let fetch = |spec: &str, file: &str| {
        let path = net.path(file);
        let v = c.ferry_json(&["fetch", spec, "-o", &path.display().to_string()]);
        let (version, cid, sha) = published
            .iter()
            .find(|(_, cid, _)| v["cid"] == cid.as_str())
            .unwrap_or_else(|| panic!("fetch {spec} returned an unknown cid: {v}"));
        assert_eq!(v["version"], *version);
        assert_eq!(v["package"], "fresh:hello");
        assert_eq!(v["sha256"], format!("sha256:{sha}").as_str());
        assert_eq!(
            &sha256_file(&path),
            sha,
            "fetch {spec}: bytes differ from the published file"
        );
        assert!(
            c.dir.join("blobs").join(cid).is_file(),
            "C keeps (and serves) what it fetched"
        );
        version.to_string()
    };
    assert_eq!(
        fetch("fresh:hello", "latest.wasm"),
        "1.1.0",
        "no @ means newest stable"
    );
    assert_eq!(
        fetch("fresh:hello@1.0.0", "exact.wasm"),
        "1.0.0",
        "a bare version is exact"
    );
    assert_eq!(fetch("fresh:hello@^1", "req.wasm"), "1.1.0");
    assert_eq!(fetch("fresh:hello@2.0.0-rc.1", "pre.wasm"), "2.0.0-rc.1");
    assert_eq!(fetch(&published[0].1, "cid.wasm"), "1.0.0", "fetch by CID");
    assert_eq!(
        fetch(&format!("sha256:{}", published[1].2), "sha.wasm"),
        "1.1.0",
        "fetch by sha256"
    );

    let size = fs::metadata(net.path("exact.wasm"))
        .expect("fetched file")
        .len();
    assert_eq!(
        c.http_get(&format!("/v1/blobs/{first_cid}")).0,
        200,
        "C serves what it fetched"
    );
    let p = c.http_get(&format!("/v1/progress/{first_cid}")).1;
    assert_eq!(
        p,
        serde_json::json!({ "done": size, "total": size, "complete": true })
    );

    let out = c.ferry(&[
        "fetch",
        "fresh:hello@^3",
        "-o",
        &net.path("none.wasm").display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no version matches ^3: {}",
        stderr_text(&out)
    );
    assert!(
        stderr_text(&out).contains("no version of fresh:hello matches"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(
        c.ferry(&["fetch", "fresh:nothing"]).status.code(),
        Some(1),
        "unknown package"
    );

    // Usage errors exit 2; both shutdown signals stop a daemon cleanly.
    assert_eq!(
        c.ferry(&["publish"]).status.code(),
        Some(2),
        "missing arguments"
    );
    assert_eq!(
        c.ferry(&["fetch", "Not A Name"]).status.code(),
        Some(2),
        "an unparsable spec is a usage error"
    );
    assert!(c.stop_with("INT"), "SIGINT gives a clean exit 0");
    assert!(a.stop_with("TERM"), "SIGTERM gives a clean exit 0");
    for n in [&a, &c] {
        assert!(
            !n.dir.join("node.json").exists(),
            "node.json is removed on clean shutdown"
        );
    }
    let out = c.ferry(&["info", "fresh:hello"]);
    assert_eq!(out.status.code(), Some(1), "no node running");
    assert!(
        stderr_text(&out).contains("no node is running"),
        "{}",
        stderr_text(&out)
    );
}
