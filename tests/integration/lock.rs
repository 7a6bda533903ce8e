//! Lockfiles through the CLI on two real nodes: a publisher (A, also the network's
//! operator) and a consumer (B) whose project locks, installs and updates its
//! dependencies: reproducible locks, yanked-but-locked warnings, updates that skip
//! yanked versions, installs that transfer nothing the second time, deleted
//! content that fails the install with the operator's reason and leaves the
//! project untouched, and locks edited by hand that are refused.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::integration::support::{
    Net, Node, cid_of, sha256_file, sha256_hex, small_component, stderr_text, wait_until,
};

/// `ferry [--json] ARGS --project DIR` on `node`.
fn in_project(node: &Node, json: bool, args: &[&str], project: &Path) -> std::process::Output {
    let dir = project.display().to_string();
    let mut full: Vec<&str> = Vec::new();
    if json {
        full.push("--json");
    }
    full.extend_from_slice(args);
    full.extend_from_slice(&["--project", &dir]);
    node.ferry(&full)
}

/// Like [`in_project`] with `--json`, asserting success; returns (JSON, stderr).
fn ok(node: &Node, args: &[&str], project: &Path) -> (Value, String) {
    let out = in_project(node, true, args, project);
    assert!(
        out.status.success(),
        "`ferry {}` in {} failed: {}",
        args.join(" "),
        project.display(),
        stderr_text(&out)
    );
    let v = serde_json::from_slice(&out.stdout).expect("JSON output");
    (v, stderr_text(&out))
}

/// The `[[package]]` entries of a project's ferry.lock, as (name, version, digest, cid).
fn locked(project: &Path) -> Vec<(String, String, String, String)> {
    let text = fs::read_to_string(project.join("ferry.lock")).expect("reading ferry.lock");
    let v: toml::Value = toml::from_str(&text).expect("ferry.lock is TOML");
    v.get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("version"), s("digest"), s("cid"))
        })
        .collect()
}

/// Waits until B's view of `package` satisfies `cond` (gossip or sync got there).
fn wait_info(node: &Node, package: &str, what: &str, cond: impl Fn(&Value) -> bool) {
    wait_until(Duration::from_secs(120), what, || {
        let out = node.ferry(&["--json", "info", package]);
        out.status.success() && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| cond(&v))
    });
}

fn version_flag(v: &Value, version: &str, flag: &str) -> bool {
    v["versions"].as_array().is_some_and(|a| {
        a.iter()
            .any(|r| r["version"] == version && !r[flag].is_null())
    })
}

#[test]
fn lock_install_update_with_yanked_and_deleted_content() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "shop"]);

    // Publishes `package@version` on A and returns the bytes' sha256 hex.
    let publish = |package: &str, version: &str| -> (String, String) {
        let bytes = small_component(&format!(
            "{}-{}",
            package.replace(':', "-"),
            version.replace('.', "-")
        ));
        let file = net.path(&format!("{package}-{version}.wasm"));
        fs::write(&file, &bytes).expect("writing a component");
        let v = a.ferry_json(&[
            "publish",
            &file.display().to_string(),
            "--package",
            package,
            "--version",
            version,
        ]);
        assert_eq!(v["cid"], cid_of(&bytes).as_str());
        (sha256_hex(&bytes), cid_of(&bytes))
    };
    let r100 = publish("shop:router", "1.0.0");
    let r120 = publish("shop:router", "1.2.0");
    let r130 = publish("shop:router", "1.3.0");
    let log = publish("shop:log", "0.3.1");
    wait_info(&b, "shop:router", "B to learn three routers", |v| {
        v["versions"].as_array().is_some_and(|a| a.len() == 3)
    });
    wait_info(&b, "shop:log", "B to learn the logger", |_| true);

    let project = net.path("app");
    fs::create_dir_all(&project).expect("creating the project");
    fs::write(
        project.join("ferry.toml"),
        "[package]\nname = \"shop:app\"\nversion = \"0.1.0\"\n\n[dependencies]\n\"shop:router\" = \"^1.2\"\n\"shop:log\" = \"0.3.1\"\n",
    )
    .expect("writing ferry.toml");

    // lock: the highest matching version, with the digest and CID of its bytes.
    let (v, _) = ok(&b, &["lock"], &project);
    assert_eq!(v["written"], true, "{v}");
    let entries = locked(&project);
    assert_eq!(
        entries,
        vec![
            (
                "shop:log".into(),
                "0.3.1".into(),
                format!("sha256:{}", log.0),
                log.1.clone()
            ),
            (
                "shop:router".into(),
                "1.3.0".into(),
                format!("sha256:{}", r130.0),
                r130.1.clone()
            ),
        ],
        "sorted entries, highest router matching ^1.2"
    );
    let lock_text = fs::read_to_string(project.join("ferry.lock")).expect("ferry.lock");
    assert!(
        !r100.0.is_empty() && !lock_text.contains(&r100.0),
        "1.0.0 is outside ^1.2"
    );

    // install: both files, verified; a second install transfers nothing.
    let (v, _) = ok(&b, &["install"], &project);
    assert_eq!(v["fetched"], 2, "{v}");
    let router = project.join("deps/shop/router@1.3.0.wasm");
    assert_eq!(sha256_file(&router), r130.0);
    assert_eq!(
        sha256_file(&project.join("deps/shop/log@0.3.1.wasm")),
        log.0
    );
    let mtime = fs::metadata(&router)
        .and_then(|m| m.modified())
        .expect("mtime");
    let (v, _) = ok(&b, &["install"], &project);
    assert_eq!(
        (v["fetched"].clone(), v["present"].clone()),
        (0.into(), 2.into()),
        "{v}"
    );
    assert_eq!(v["bytes_transferred"], 0, "{v}");
    assert_eq!(
        fs::metadata(&router)
            .and_then(|m| m.modified())
            .expect("mtime"),
        mtime,
        "a present, verified file is not rewritten"
    );

    // Yank 1.3.0: lock keeps it (reproducible) and install warns; update skips it.
    a.ferry_json(&[
        "yank",
        "shop:router@1.3.0",
        "--reason",
        "breaks routing tables",
    ]);
    wait_info(&b, "shop:router", "B to see the yank", |v| {
        version_flag(v, "1.3.0", "yanked")
    });
    let (v, err) = ok(&b, &["lock"], &project);
    assert_eq!(
        v["written"], false,
        "an unchanged lock is not rewritten: {v}"
    );
    assert_eq!(
        fs::read_to_string(project.join("ferry.lock")).expect("lock"),
        lock_text
    );
    assert!(
        err.contains("shop:router@1.3.0") && err.contains("breaks routing tables"),
        "{err}"
    );
    let (_, err) = ok(&b, &["install"], &project);
    assert!(
        err.contains("warning: shop:router@1.3.0 is yanked (breaks routing tables)"),
        "install warns about yanked-but-locked: {err}"
    );
    let (v, _) = ok(&b, &["update", "shop:router"], &project);
    let changes = v["changes"].as_array().expect("changes").clone();
    assert!(
        changes.iter().any(|c| c["package"] == "shop:router"
            && c["change"] == "updated"
            && c["from"] == "1.3.0"
            && c["to"] == "1.2.0"),
        "update moves off the yanked version to the highest other match: {v}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c["package"] == "shop:log" && c["change"] == "unchanged")
    );
    assert_eq!(locked(&project)[1].3, r120.1);
    let (v, _) = ok(&b, &["install"], &project);
    assert_eq!(v["fetched"], 1, "{v}");
    assert_eq!(
        sha256_file(&project.join("deps/shop/router@1.2.0.wasm")),
        r120.0
    );
    assert!(!router.exists(), "the old version's file is removed");

    // A new release does not move a lock; `ferry update` (all) does.
    let r140 = publish("shop:router", "1.4.0");
    wait_info(&b, "shop:router", "B to learn 1.4.0", |v| {
        v["versions"].as_array().is_some_and(|a| a.len() == 4)
    });
    ok(&b, &["lock"], &project);
    assert_eq!(locked(&project)[1].1, "1.2.0", "lock keeps what still fits");
    ok(&b, &["update"], &project);
    assert_eq!(locked(&project)[1].1, "1.4.0");
    assert_eq!(locked(&project)[1].3, r140.1);
    let (v, _) = ok(&b, &["lock", "--wkg"], &project);
    let wkg: toml::Value =
        toml::from_str(&fs::read_to_string(project.join("wkg.lock")).expect("wkg.lock"))
            .expect("wkg.lock is TOML");
    assert_eq!(wkg["version"].as_integer(), Some(1), "{v}");
    let digests: Vec<&str> = wkg["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["versions"].as_array().into_iter().flatten())
        .filter_map(|v| v["digest"].as_str())
        .collect();
    assert_eq!(digests.len(), 2, "{wkg}");
    assert!(
        digests.contains(&format!("sha256:{}", r140.0).as_str()),
        "{wkg}"
    );
    ok(&b, &["install"], &project);

    // Usage mistakes and stale or edited locks.
    let out = in_project(&b, false, &["update", "shop:nothing"], &project);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(stderr_text(&out).contains("shop:nothing is not a dependency"));
    let lock_text = fs::read_to_string(project.join("ferry.lock")).expect("lock");
    let edited = project.join("edited");
    fs::create_dir_all(&edited).expect("mkdir");
    fs::copy(project.join("ferry.toml"), edited.join("ferry.toml")).expect("copy");
    fs::write(
        edited.join("ferry.lock"),
        lock_text.replace(&format!("sha256:{}", r140.0), &format!("sha256:{}", r120.0)),
    )
    .expect("writing an edited lock");
    let out = in_project(&b, false, &["install"], &edited);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shop:router@1.4.0") && err.contains("name different content"),
        "{err}"
    );
    assert!(
        !edited.join("deps").exists(),
        "a refused lock installs nothing"
    );
    fs::write(edited.join("ferry.lock"), &lock_text).expect("restoring the lock");
    fs::write(
        edited.join("ferry.toml"),
        "[dependencies]\n\"shop:router\" = \"^1.4\"\n\"shop:log\" = \"0.3.1\"\n",
    )
    .expect("changing a requirement");
    let out = in_project(&b, false, &["install"], &edited);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shop:router ^1.4") && err.contains("run `ferry lock`"),
        "{err}"
    );

    // The operator deletes the logger: a fresh checkout of the project cannot install,
    // the message names the package, version and reason, and nothing is written.
    a.ferry_json(&["delete", "shop:log@0.3.1", "--reason", "license violation"]);
    wait_info(&b, "shop:log", "B to see the deletion", |v| {
        version_flag(v, "0.3.1", "deleted")
    });
    let fresh = net.path("checkout");
    fs::create_dir_all(&fresh).expect("mkdir");
    for f in ["ferry.toml", "ferry.lock"] {
        fs::copy(project.join(f), fresh.join(f)).expect("copying the project");
    }
    let out = in_project(&b, false, &["install"], &fresh);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("shop:log@0.3.1")
            && err.contains("deleted by the network operator: license violation")
            && err.contains("ferry update shop:log"),
        "{err}"
    );
    assert!(
        !fresh.join("deps").exists(),
        "nothing installed when one entry is deleted"
    );
    let out = in_project(&b, false, &["lock"], &project);
    assert_eq!(
        out.status.code(),
        Some(1),
        "lock refuses a deleted locked version"
    );
    assert!(
        stderr_text(&out).contains("license violation"),
        "{}",
        stderr_text(&out)
    );
    let out = in_project(&b, false, &["update", "shop:log"], &project);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no other version matches =0.3.1"
    );
    assert!(
        stderr_text(&out).contains("shop:log"),
        "{}",
        stderr_text(&out)
    );
}
