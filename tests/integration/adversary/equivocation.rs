//! Equivocation: one publisher key on two honest-software nodes that are partitioned
//! from each other and from everyone else, each publishing a different release at the
//! same position of the same log. Once they reconnect, every node must hold both
//! records as evidence, mark the log forked, refuse further releases, say so in
//! `ferry info`, and agree again after an owner's `ferry fork resolve`.

use std::fs;

use ferry_protocol::RecordId;
use serde_json::Value;

use crate::integration::support::{DEADLINE, Net, Node, small_component, stderr_text, wait_until};

const PACKAGE: &str = "eq:split";

fn publish(node: &Node, net: &Net, version: &str, tag: &str) -> Result<String, String> {
    let file = net.path(&format!("eq-{tag}.wasm"));
    fs::write(&file, small_component(tag)).expect("writing a component");
    let out = node.ferry(&[
        "--json",
        "publish",
        &file.display().to_string(),
        "--package",
        PACKAGE,
        "--version",
        version,
        "--license",
        "MIT",
    ]);
    if !out.status.success() {
        return Err(stderr_text(&out));
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("publish prints JSON");
    Ok(v["record"].as_str().expect("a record id").to_string())
}

fn package(node: &Node) -> Value {
    node.http_get(&format!("/v1/packages/{PACKAGE}")).1
}

fn record(node: &Node, id: &str) -> (u16, Value) {
    node.http_get(&format!("/v1/records/{id}"))
}

/// Runs the scenario against the honest nodes `honest` (the first is the operator)
/// and returns the two equivocating nodes, still running, and the conflicting ids.
pub fn run(net: &Net, honest: &[Node]) -> (Vec<Node>, Vec<RecordId>) {
    let h1 = &honest[0];
    let mut e1 = Node::join(net.path("e1"), &h1.network);
    let mut e2 = Node::join(net.path("e2"), &h1.network);
    fs::copy(e1.dir.join("publisher.key"), e2.dir.join("publisher.key"))
        .expect("copying the publisher key");
    let key = e1.ferry_json(&["key", "show"])["publisher"]
        .as_str()
        .expect("a key")
        .to_string();
    assert_eq!(e2.ferry_json(&["key", "show"])["publisher"], key.as_str());
    h1.ferry_json(&["namespace", "define", "eq", "--owner", &key]);

    e1.start(&[h1.tcp_addr()]);
    e2.start(&[honest[1].tcp_addr()]);
    for e in [&e1, &e2] {
        wait_until(DEADLINE, "the equivocators to learn namespace eq", || {
            e.http_get("/v1/status").1["namespaces"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == "eq"))
        });
    }
    publish(&e1, net, "1.0.0", "base").expect("the first release");
    for n in honest.iter().chain([&e2]) {
        wait_until(DEADLINE, "everyone to hold eq:split@1.0.0", || {
            package(n)["head"]["seq"] == 1
        });
    }

    // Partition: each restarts alone, and publishes at seq 2.
    assert!(e1.stop() && e2.stop(), "clean stops");
    e1.start(&[]);
    e2.start(&[]);
    let left = publish(&e1, net, "2.0.0", "left").expect("E1's release");
    let right = publish(&e2, net, "2.0.0", "right").expect("E2's release");
    assert_eq!(record(&e1, &left).1["seq"], 2, "E1 published at seq 2");
    assert_eq!(record(&e2, &right).1["seq"], 2, "E2 published at seq 2");

    // Heal the partition.
    assert!(e1.stop() && e2.stop(), "clean stops");
    e1.start(&[h1.tcp_addr()]);
    e2.start(&[honest[2].tcp_addr()]);
    let mut candidates = vec![left.clone(), right.clone()];
    candidates.sort();
    let all: Vec<&Node> = honest.iter().chain([&e1, &e2]).collect();
    for n in &all {
        wait_until(DEADLINE, "every node to mark eq:split forked", || {
            let p = package(n);
            let mut got: Vec<String> = p["forked"]["candidates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
            got.sort();
            p["forked"]["seq"] == 2 && got == candidates
        });
        let p = package(n);
        assert_eq!(p["head"]["seq"], 1, "a forked log stops before the fork");
        assert!(
            p["versions"]
                .as_array()
                .is_some_and(|v| v.iter().all(|r| r["version"] != "2.0.0")),
            "neither conflicting release is picked: {p}"
        );
        for id in [&left, &right] {
            let (status, r) = record(n, id);
            assert_eq!(status, 200, "{} keeps {id} as evidence", n.dir.display());
            assert_eq!(r["evidence"], true, "{r}");
        }
        let out = n.ferry(&["info", PACKAGE]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", stderr_text(&out));
        assert!(
            text.contains("FORKED at seq 2")
                && text.contains(&left)
                && text.contains(&right)
                && text.contains("ferry fork resolve"),
            "`ferry info` on {} says the log is forked:\n{text}",
            n.dir.display()
        );
    }

    // Nothing more is accepted on the forked log, from either holder of the key.
    for (e, tag) in [(&e1, "three-a"), (&e2, "three-b")] {
        let err = publish(e, net, "3.0.0", tag).expect_err("a release on a forked log");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("eq:split@3.0.0") && err.contains("is forked at seq 2"),
            "the refusal names the release and the rule: {err}"
        );
    }

    // Only an owner may end the fork.
    let out = honest[1].ferry(&["fork", "resolve", PACKAGE, "--keep", &right]);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(PACKAGE) && err.contains("may not resolve forks in namespace `eq`"),
        "{err}"
    );

    // An owner keeps one; everyone follows, and the other stays as evidence.
    e1.ferry_json(&["fork", "resolve", PACKAGE, "--keep", &left]);
    for n in &all {
        wait_until(DEADLINE, "every node to apply the resolution", || {
            let p = package(n);
            p["forked"].is_null() && p["head"]["seq"] == 3
        });
        let p = package(n);
        let two = p["versions"]
            .as_array()
            .and_then(|v| v.iter().find(|r| r["version"] == "2.0.0"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(two["record"], left.as_str(), "the kept release: {p}");
        assert_eq!(record(n, &right).1["evidence"], true);
        assert_eq!(record(n, &left).1["evidence"], false);
    }
    publish(&e2, net, "3.0.0", "three").expect("releases flow again after the resolution");
    for n in &all {
        wait_until(DEADLINE, "every node to hold eq:split@3.0.0", || {
            package(n)["head"]["seq"] == 4
        });
    }
    let ids = [left, right]
        .iter()
        .map(|i| i.parse().expect("a record id"))
        .collect();
    (vec![e1, e2], ids)
}
