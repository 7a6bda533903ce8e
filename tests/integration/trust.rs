//! The trust commands end to end, through the CLI, across three nodes (and a late
//! joiner): yank and unyank, grants and revocations, operator deletion (including a
//! node that was offline, a late joiner and a restart), and the SPDX license policy
//! (including a license taken from the component's own metadata).
//!
//! Every refusal must exit 1 with exactly one stderr line that names the package,
//! version or key at fault and the rule that refused it.

use std::fs;
use std::process::Output;

use serde_json::Value;

use crate::integration::support::{
    DEADLINE, Net, Node, blob_files, cid_of, sha256_file, sha256_hex, small_component, stderr_text,
    wait_until, with_section,
};

/// A (operator), B bootstrapped from A, C from B: C is two hops from A.
fn three(net: &Net) -> (Node, Node, Node) {
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&[a.tcp_addr()]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[b.tcp_addr()]);
    (a, b, c)
}

fn key(n: &Node) -> String {
    n.ferry_json(&["key", "show"])["publisher"]
        .as_str()
        .expect("a key")
        .to_string()
}

/// Writes `bytes` as `<name>.wasm` in the test directory.
fn file(net: &Net, name: &str, bytes: &[u8]) -> String {
    let path = net.path(&format!("{name}.wasm"));
    fs::write(&path, bytes).expect("writing a component");
    path.display().to_string()
}

fn publish(n: &Node, path: &str, package: &str, version: &str, license: Option<&str>) -> Output {
    let mut args = vec![
        "--json",
        "publish",
        path,
        "--package",
        package,
        "--version",
        version,
    ];
    if let Some(l) = license {
        args.extend(["--license", l]);
    }
    n.ferry(&args)
}

/// Asserts a refusal: exit 1, one stderr line, containing every fragment of `must`.
fn refused(out: &Output, what: &str, must: &[&str]) -> String {
    let err = stderr_text(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what} must fail with exit 1: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: one stderr line, got: {err}"
    );
    for m in must {
        assert!(err.contains(m), "{what}: `{m}` missing from: {err}");
    }
    println!("{what}: {err}");
    err
}

/// The package as the node's API shows it (Null while unknown).
fn package(n: &Node, name: &str) -> Value {
    n.http_get(&format!("/v1/packages/{name}")).1
}

fn version<'a>(p: &'a Value, v: &str) -> &'a Value {
    p["versions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["version"] == v))
        .unwrap_or(&Value::Null)
}

fn fetch(n: &Node, spec: &str, out: &str) -> Output {
    n.ferry(&["--json", "fetch", spec, "-o", out])
}

fn fetched(out: &Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: {}", stderr_text(out));
    serde_json::from_slice(&out.stdout).expect("fetch prints JSON")
}

#[test]
fn yank_unyank_grant_and_revoke_across_three_nodes() {
    let net = Net::new();
    let (a, b, c) = three(&net);
    a.ferry_json(&["namespace", "define", "demo"]);
    let one = small_component("one");
    let two = small_component("two");
    for (v, bytes) in [("1.0.0", &one), ("1.1.0", &two)] {
        let out = publish(&a, &file(&net, v, bytes), "demo:lib", v, Some("Apache-2.0"));
        assert!(out.status.success(), "{}", stderr_text(&out));
    }
    for n in [&b, &c] {
        wait_until(DEADLINE, "both releases everywhere", || {
            !version(&package(n, "demo:lib"), "1.1.0").is_null()
        });
    }

    // Yank: requirements skip it, an exact version still fetches (with a warning),
    // and info shows the reason, on every node.
    a.ferry_json(&["yank", "demo:lib@1.1.0", "--reason", "breaks the ABI"]);
    for n in [&a, &b, &c] {
        wait_until(DEADLINE, "the yank everywhere", || {
            !version(&package(n, "demo:lib"), "1.1.0")["yanked"].is_null()
        });
        let out_dir = n.dir.with_extension("out");
        let got = fetched(
            &fetch(
                n,
                "demo:lib@^1",
                &out_dir.join("req.wasm").display().to_string(),
            ),
            "fetch ^1",
        );
        assert_eq!(got["version"], "1.0.0", "^1 skips the yanked 1.1.0");
        let got = fetched(
            &fetch(
                n,
                "demo:lib",
                &out_dir.join("latest.wasm").display().to_string(),
            ),
            "fetch latest",
        );
        assert_eq!(got["version"], "1.0.0", "latest skips the yanked 1.1.0");
        let path = out_dir.join("exact.wasm");
        let out = fetch(n, "demo:lib@1.1.0", &path.display().to_string());
        let got = fetched(&out, "fetch exact yanked");
        assert_eq!(got["version"], "1.1.0");
        assert_eq!(sha256_file(&path), sha256_hex(&two), "the yanked bytes");
        let warn = stderr_text(&out);
        assert!(
            warn.contains("warning: demo:lib@1.1.0 is yanked (breaks the ABI)"),
            "exact fetch warns: {warn}"
        );
        let info = n.ferry(&["info", "demo:lib"]);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.lines()
                .any(|l| l.contains("1.1.0") && l.contains("[yanked: breaks the ABI]")),
            "info on {} shows the yank:\n{text}",
            n.dir.display()
        );
    }

    // Refused yanks: each names the release (or key) and the rule.
    let bk = key(&b);
    refused(
        &b.ferry(&["yank", "demo:lib@1.0.0"]),
        "a yank by a key with no rights",
        &[
            "demo:lib@1.0.0",
            &bk,
            "may not yank releases in namespace `demo`",
        ],
    );
    refused(
        &a.ferry(&["yank", "demo:lib@1.1.0"]),
        "a second yank",
        &["demo:lib@1.1.0", "already yanked"],
    );
    refused(
        &a.ferry(&["unyank", "demo:lib@1.0.0"]),
        "an unyank of a live version",
        &["demo:lib@1.0.0", "is not yanked"],
    );
    refused(
        &a.ferry(&["yank", "demo:lib@7.0.0"]),
        "a yank of an unknown version",
        &["demo:lib@7.0.0", "never released"],
    );

    // Unyank: requirements pick it again everywhere.
    a.ferry_json(&["unyank", "demo:lib@1.1.0"]);
    for n in [&a, &b, &c] {
        wait_until(DEADLINE, "the unyank everywhere", || {
            version(&package(n, "demo:lib"), "1.1.0")["yanked"].is_null()
        });
        let path = n.dir.with_extension("out").join("again.wasm");
        let out = fetch(n, "demo:lib@^1", &path.display().to_string());
        assert_eq!(fetched(&out, "fetch ^1 after unyank")["version"], "1.1.0");
        assert!(
            !stderr_text(&out).contains("yanked"),
            "no warning after the unyank"
        );
    }

    // A granted key publishes; its release is authorized by the grant, everywhere.
    let grant = a.ferry_json(&["grant", "demo:lib", &bk, "--perm", "release"]);
    let grant_id = grant["record"].as_str().expect("a record id").to_string();
    wait_until(DEADLINE, "B to learn its grant", || {
        package(&b, "demo:lib")["grants"]
            .as_array()
            .is_some_and(|g| g.iter().any(|x| x["key"] == bk.as_str()))
    });
    let three = small_component("three");
    let out = publish(
        &b,
        &file(&net, "b2", &three),
        "demo:lib",
        "2.0.0",
        Some("MIT"),
    );
    assert!(
        out.status.success(),
        "granted publish: {}",
        stderr_text(&out)
    );
    for n in [&a, &b, &c] {
        wait_until(DEADLINE, "B's release everywhere", || {
            let p = package(n, "demo:lib");
            let r = version(&p, "2.0.0");
            r["publisher"] == bk.as_str() && r["authority"] == grant_id.as_str()
        });
    }
    refused(
        &b.ferry(&["grant", "demo:lib", &key(&c), "--perm", "release"]),
        "a grant by a grantee",
        &[
            "demo:lib",
            &bk,
            "may not grant keys in namespace `demo`: only its owners may",
        ],
    );
    refused(
        &b.ferry(&["yank", "demo:lib@2.0.0"]),
        "a yank by a key granted only release",
        &[
            "demo:lib@2.0.0",
            &bk,
            "lacks the `yank` permission on demo:lib",
        ],
    );

    // Revoked: B's next release is refused and reaches nobody; its history stays.
    a.ferry_json(&["revoke", "demo:lib", &bk]);
    wait_until(DEADLINE, "B to learn its revocation", || {
        package(&b, "demo:lib")["grants"]
            .as_array()
            .is_some_and(|g| g.is_empty())
    });
    let out = publish(
        &b,
        &file(&net, "b21", &small_component("four")),
        "demo:lib",
        "2.1.0",
        Some("MIT"),
    );
    refused(
        &out,
        "a release by a revoked key",
        &["demo:lib@2.1.0", &bk, "was revoked in `demo:lib`"],
    );
    let heads = |n: &Node| package(n, "demo:lib")["head"].clone();
    wait_until(DEADLINE, "the same log everywhere", || {
        heads(&a) == heads(&b) && heads(&b) == heads(&c)
    });
    for n in [&a, &b, &c] {
        let p = package(n, "demo:lib");
        assert!(version(&p, "2.1.0").is_null(), "nobody has 2.1.0: {p}");
        assert_eq!(
            version(&p, "2.0.0")["publisher"],
            bk.as_str(),
            "history stays"
        );
    }
}

#[test]
fn deletion_reaches_every_node_a_late_joiner_and_survives_restarts() {
    let net = Net::new();
    let (a, mut b, mut c) = three(&net);
    a.ferry_json(&["namespace", "define", "demo"]);
    let bad = small_component("bad");
    let good = small_component("good");
    for (v, bytes) in [("1.0.0", &bad), ("2.0.0", &good)] {
        let out = publish(&a, &file(&net, v, bytes), "demo:app", v, Some("MIT"));
        assert!(out.status.success(), "{}", stderr_text(&out));
    }
    let bad_cid = cid_of(&bad);
    for n in [&b, &c] {
        wait_until(DEADLINE, "both releases everywhere", || {
            !version(&package(n, "demo:app"), "2.0.0").is_null()
        });
        let path = n.dir.with_extension("out").join("bad.wasm");
        fetched(
            &fetch(n, "demo:app@1.0.0", &path.display().to_string()),
            "fetch",
        );
        assert!(
            blob_files(&n.dir).contains(&bad_cid),
            "{} holds it",
            n.dir.display()
        );
    }

    // Only operators delete; a target that is no package, version or CID is a usage error.
    refused(
        &b.ferry(&["delete", "demo:app@2.0.0", "--reason", "spite"]),
        "a deletion by a non-operator",
        &[
            "demo:app@2.0.0",
            &key(&b),
            "is not an operator of this network",
        ],
    );
    let out = a.ferry(&["delete", "not a target", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "usage: {}", stderr_text(&out));

    // C is offline when the operator deletes; it still holds the blob.
    assert!(c.stop(), "clean stop");
    a.ferry_json(&["delete", "demo:app@1.0.0", "--reason", "malware found"]);
    let check_deleted = |n: &Node| {
        wait_until(
            DEADLINE,
            "the deletion to arrive and the blob to go",
            || {
                !version(&package(n, "demo:app"), "1.0.0")["deleted"].is_null()
                    && !blob_files(&n.dir).contains(&bad_cid)
            },
        );
        assert_eq!(
            n.http_get(&format!("/v1/blobs/{bad_cid}")).0,
            410,
            "{} stops serving the blob",
            n.dir.display()
        );
        let out_path = n.dir.with_extension("out").join("again.wasm");
        let out_path = out_path.display().to_string();
        for spec in ["demo:app@1.0.0", bad_cid.as_str()] {
            refused(
                &fetch(n, spec, &out_path),
                "a fetch of deleted content",
                &[
                    "demo:app@1.0.0",
                    "deleted by the network operator: malware found",
                ],
            );
        }
        refused(
            &fetch(n, "demo:app@^1", &out_path),
            "a requirement matching only deleted content",
            &["demo:app", "1.0.0 (deleted)"],
        );
        let got = fetched(&fetch(n, "demo:app", &out_path), "the live version");
        assert_eq!(got["version"], "2.0.0");
        let info = n.ferry(&["info", "demo:app"]);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.lines()
                .any(|l| l.contains("1.0.0") && l.contains("[deleted: malware found]")),
            "info on {} shows the deletion:\n{text}",
            n.dir.display()
        );
        assert!(
            !blob_files(&n.dir).contains(&bad_cid),
            "nor fetched it again"
        );
    };
    check_deleted(&a);
    check_deleted(&b);

    // C restarts and learns it by sync; its copy of the blob goes.
    c.start(&[b.tcp_addr()]);
    check_deleted(&c);

    // A late joiner learns it by sync, and never stores the blob.
    let mut d = Node::join(net.path("d"), &a.network);
    d.start(&[c.tcp_addr()]);
    check_deleted(&d);

    // The deletion survives a restart.
    assert!(b.stop(), "clean stop");
    b.start(&[a.tcp_addr()]);
    check_deleted(&b);
    assert!(d.stop(), "clean stop");
}

#[test]
fn license_policy_is_enforced_on_every_node() {
    let net = Net::new();
    let (a, b, c) = three(&net);
    let owners: Vec<String> = [&a, &b, &c].iter().map(|n| key(n)).collect();
    a.ferry_json(&[
        "namespace",
        "define",
        "demo",
        "--owner",
        &owners[0],
        "--owner",
        &owners[1],
        "--owner",
        &owners[2],
    ]);
    // Before the policy, a release without a license is fine.
    let out = publish(
        &a,
        &file(&net, "early", &small_component("early")),
        "demo:early",
        "1.0.0",
        None,
    );
    assert!(out.status.success(), "{}", stderr_text(&out));

    refused(
        &b.ferry(&["network", "policy", "--require-spdx"]),
        "a policy change by a non-operator",
        &[
            "require-spdx",
            &owners[1],
            "is not an operator of this network",
        ],
    );
    let out = a.ferry(&["network", "policy"]);
    assert_eq!(out.status.code(), Some(2), "usage: {}", stderr_text(&out));
    a.ferry_json(&["network", "policy", "--require-spdx"]);
    for n in [&b, &c] {
        wait_until(DEADLINE, "the policy everywhere", || {
            n.http_get("/v1/status").1["policy"]["require_spdx"] == true
        });
    }
    for (i, n) in [&a, &b, &c].into_iter().enumerate() {
        let tag = |t: &str| format!("{t}{i}");
        let pkg = format!("demo:lic{i}");
        let release = format!("{pkg}@1.0.0");
        let bare = file(&net, &tag("bare"), &small_component(&tag("bare")));
        refused(
            &publish(n, &bare, &pkg, "1.0.0", None),
            "a release without a license",
            &[
                &release,
                "has no license, and this network requires a valid SPDX expression",
            ],
        );
        refused(
            &publish(n, &bare, &pkg, "1.0.0", Some("Totally Free")),
            "a release with a non-SPDX license",
            &[
                &release,
                "license `Totally Free` is not a valid SPDX expression",
            ],
        );
        let meta_bad = with_section(small_component(&tag("mb")), "licenses", b"Totally Free");
        refused(
            &publish(n, &file(&net, &tag("mb"), &meta_bad), &pkg, "1.0.0", None),
            "a release whose component metadata has a non-SPDX license",
            &[
                &release,
                "license `Totally Free` is not a valid SPDX expression",
            ],
        );
        let meta_ok = with_section(small_component(&tag("mk")), "licenses", b"MIT");
        let out = publish(n, &file(&net, &tag("mk"), &meta_ok), &pkg, "1.0.0", None);
        assert!(
            out.status.success(),
            "the metadata license: {}",
            stderr_text(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["license"], "MIT", "taken from the component's metadata");
        let out = publish(n, &bare, &pkg, "1.1.0", Some("Apache-2.0 OR MIT"));
        assert!(
            out.status.success(),
            "a valid expression: {}",
            stderr_text(&out)
        );
    }
    for n in [&a, &b, &c] {
        for i in 0..3 {
            let pkg = format!("demo:lic{i}");
            wait_until(DEADLINE, "the licensed releases everywhere", || {
                let p = package(n, &pkg);
                version(&p, "1.0.0")["license"] == "MIT"
                    && version(&p, "1.1.0")["license"] == "Apache-2.0 OR MIT"
                    && p["versions"].as_array().is_some_and(|v| v.len() == 2)
            });
        }
    }
    // Lifting the policy lets unlicensed releases through again.
    a.ferry_json(&["network", "policy", "--no-require-spdx"]);
    wait_until(DEADLINE, "the lifted policy on C", || {
        c.http_get("/v1/status").1["policy"]["require_spdx"] == false
    });
    let out = publish(
        &c,
        &file(&net, "late", &small_component("late")),
        "demo:late",
        "1.0.0",
        None,
    );
    assert!(out.status.success(), "{}", stderr_text(&out));
}
