//! Static assets over two real nodes: a tree published with `--assets DIR` comes back
//! byte for byte with `fetch --with-assets -o DIR`; links and special files are refused
//! at publish; a hostile tree (crafted with ferry_protocol and pushed through the API,
//! also as a record signed with the publisher's own key) is refused at publish, at
//! submission and on fetch, and nothing is written outside (or inside) the target.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use ferry_protocol::assets::{ASSETS_FORMAT, AssetEntry, AssetTree};
use ferry_protocol::record::{AssetsRef, Attachment, Body, RECORD_FORMAT, Record, Release};
use ferry_protocol::{ContentId, SignedRecord, chunk};
use serde_bytes::ByteBuf;
use serde_json::Value;

use crate::integration::support::{
    DEADLINE, Net, Node, blob_files, http_post, sha256_file, small_component, stderr_text,
    wait_until, with_custom_section,
};

/// Every regular file below `root` (relative path → (sha256, executable)), skipping
/// `skip` at the top.
fn snapshot(root: &Path, skip: &str) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for e in fs::read_dir(&dir).expect("reading a directory").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let m = fs::symlink_metadata(e.path()).expect("metadata");
            if m.is_dir() {
                stack.push((e.path(), rel));
            } else if rel != skip {
                assert!(m.is_file(), "{rel} is not a regular file");
                out.insert(rel, (sha256_file(&e.path()), executable(&m)));
            }
        }
    }
    out
}

#[cfg(unix)]
fn executable(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &fs::Metadata) -> bool {
    false
}

fn two_nodes(net: &Net, namespace: &str) -> (Node, Node) {
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", namespace]);
    (a, c)
}

#[test]
fn an_assets_tree_round_trips_byte_for_byte() {
    let net = Net::new();
    let (a, c) = two_nodes(&net, "web");
    let site = net.path("site");
    for d in ["css", "js/app/lib", "bin", "data"] {
        fs::create_dir_all(site.join(d)).expect("dirs");
    }
    fs::write(site.join("index.html"), "<h1>ferry</h1>\n").expect("file");
    fs::write(site.join("css/site.css"), "body { margin: 0 }\n").expect("file");
    fs::write(site.join("js/app/lib/main.js"), "export const x = 1;\n").expect("file");
    fs::write(site.join("empty"), b"").expect("the empty file");
    fs::write(site.join("ünïcode.txt"), "names are UTF-8\n").expect("file");
    // Three chunks, none alike.
    let big = with_custom_section(Vec::new(), (5 << 20) / 2, 61);
    fs::write(site.join("data/big.bin"), &big).expect("file");
    fs::write(site.join("bin/run.sh"), "#!/bin/sh\necho hi\n").expect("file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(site.join("bin/run.sh"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let want = snapshot(&site, "");
    assert_eq!(want.len(), 7);

    let component = net.path("site.wasm");
    fs::write(&component, small_component("site")).expect("component");
    let v = a.ferry_json(&[
        "publish",
        &component.display().to_string(),
        "--package",
        "web:site",
        "--version",
        "1.0.0",
        "--assets",
        &site.display().to_string(),
    ]);
    assert_eq!(v["assets"]["files"], 7, "{v}");
    wait_until(DEADLINE, "C to learn web:site", || {
        c.ferry(&["info", "web:site"]).status.success()
    });
    let info = c.ferry_json(&["info", "web:site"]);
    let shown = &info["versions"][0]["attachments"]["assets"];
    assert_eq!(shown["files"], 7, "info shows the asset count: {info}");
    let total: u64 = want
        .keys()
        .map(|k| fs::metadata(site.join(k)).expect("size").len())
        .sum();
    assert_eq!(shown["bytes"], total, "info shows the total size: {info}");

    let out = net.path("out");
    let v = c.ferry_json(&[
        "fetch",
        "web:site",
        "--with-assets",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(v["assets"]["files"], 7, "{v}");
    let got = snapshot(&out, "site-1.0.0.wasm");
    assert_eq!(
        got, want,
        "every file, its bytes and its executable bit come back"
    );
    assert_eq!(
        sha256_file(&out.join("site-1.0.0.wasm")),
        sha256_file(&component),
        "and the component beside them"
    );
    // The human form of info names the assets too.
    let text = String::from_utf8_lossy(&c.ferry(&["info", "web:site"]).stdout).into_owned();
    assert!(text.contains("assets: 7 files"), "{text}");

    // C now serves them: with the publisher gone, a third node gets everything from C.
    let c_addr = c.tcp_addr();
    drop(a);
    let mut d = Node::join(net.path("d"), &c.network);
    d.start(&[c_addr]);
    wait_until(DEADLINE, "D to learn web:site", || {
        d.ferry(&["info", "web:site"]).status.success()
    });
    let out_d = net.path("out-d");
    d.ferry_json(&[
        "fetch",
        "web:site",
        "--with-assets",
        "-o",
        &out_d.display().to_string(),
    ]);
    assert_eq!(
        snapshot(&out_d, "site-1.0.0.wasm"),
        want,
        "the same tree from C"
    );
}

#[test]
fn links_and_special_files_are_refused_at_publish_and_nothing_is_uploaded() {
    let net = Net::new();
    let (a, _c) = two_nodes(&net, "web");
    let component = net.path("app.wasm");
    fs::write(&component, small_component("linked")).expect("component");
    let site = net.path("site");
    fs::create_dir_all(site.join("sub")).expect("dirs");
    fs::write(site.join("ok.txt"), "fine").expect("file");
    let before = blob_files(&a.dir);
    #[cfg(unix)]
    {
        // The same publish each time: only the tree under site/ changes.
        let publish = || {
            a.ferry(&[
                "publish",
                &component.display().to_string(),
                "--package",
                "web:linked",
                "--version",
                "1.0.0",
                "--assets",
                &site.display().to_string(),
            ])
        };
        std::os::unix::fs::symlink("/etc/passwd", site.join("sub/passwd")).expect("a link");
        let out = publish();
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("sub/passwd") && err.contains("symbolic link"),
            "the message names the link: {err}"
        );
        fs::remove_file(site.join("sub/passwd")).expect("removing the link");
        let made_fifo = std::process::Command::new("mkfifo")
            .arg(site.join("pipe"))
            .status()
            .is_ok_and(|s| s.success());
        if made_fifo {
            let out = publish();
            let err = stderr_text(&out);
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("named pipe"), "{err}");
        }
    }
    assert!(
        !a.ferry(&["info", "web:linked"]).status.success(),
        "no release was made"
    );
    assert_eq!(blob_files(&a.dir), before, "nothing was uploaded");
}

/// A tree with `entries` as given, not checked: what a hostile publisher can encode.
fn hostile_tree(entries: Vec<AssetEntry>) -> Vec<u8> {
    AssetTree {
        format: ASSETS_FORMAT,
        entries,
    }
    .encode()
}

fn upload(node: &Node, bytes: &[u8]) -> String {
    let (status, v) = http_post(node, "/v1/blobs", bytes.to_vec());
    assert_eq!(status, 200, "upload: {v}");
    v["cid"].as_str().expect("cid").to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A release of `component` as `log@version` after `head`, with `tree` as its assets,
/// signed by `a`'s own publisher key.
fn signed_release(
    a: &Node,
    log: &str,
    version: &str,
    component: &[u8],
    tree: &[u8],
    files: u64,
    bytes: u64,
) -> SignedRecord {
    let key = ferry_node::data_dir::DataDir::open(&a.dir)
        .expect("data dir")
        .publisher_key()
        .expect("the publisher key");
    let head = a.ferry_json(&["info", log])["head"].clone();
    let summary = ferry_protocol::component::check(component)
        .expect("a valid component")
        .summary;
    let attachments = ferry_protocol::record::Attachments {
        assets: Some(AssetsRef {
            tree: Attachment {
                content: ContentId::of(tree),
                size: tree.len() as u64,
                chunks: ByteBuf::from(chunk::digests(tree, chunk::CHUNK_SIZE)),
            },
            files,
            bytes,
        }),
        ..Default::default()
    };
    SignedRecord::sign(
        &key,
        Record {
            format: RECORD_FORMAT,
            network: Some(a.network.parse().expect("network id")),
            log: log.into(),
            seq: head["seq"].as_u64().expect("seq") + 1,
            prev: Some(head["id"].as_str().expect("id").parse().expect("record id")),
            time_ms: now_ms(),
            body: Body::Release(Release {
                version: version.into(),
                kind: ferry_protocol::component::PackageKind::Component,
                content: ContentId::of(component),
                size: component.len() as u64,
                chunk_size: chunk::CHUNK_SIZE,
                chunks: ByteBuf::from(chunk::digests(component, chunk::CHUNK_SIZE)),
                description: None,
                license: None,
                summary: Some(summary),
                attachments,
            }),
        },
    )
}

#[test]
fn a_hostile_tree_is_refused_everywhere_and_nothing_is_written() {
    let net = Net::new();
    let (a, c) = two_nodes(&net, "evil");
    let component = small_component("evil");
    let file = net.path("evil.wasm");
    fs::write(&file, &component).expect("component");
    a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        "evil:site",
        "--version",
        "1.0.0",
    ]);
    let payload = b"overwritten by ferry".to_vec();
    upload(&a, &payload);

    // Through the publish endpoint: an absolute path is refused, no release is made.
    let tree = hostile_tree(vec![AssetEntry::of("/etc/ferry-owned", &payload, false)]);
    let tree_cid = upload(&a, &tree);
    let (status, v) = http_post(
        &a,
        &format!("/v1/publish?package=evil%3Asite&version=1.1.0&assets={tree_cid}"),
        component.clone(),
    );
    assert_eq!(status, 422, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("/etc/ferry-owned") && msg.contains("absolute"),
        "{msg}"
    );
    assert!(!a.ferry(&["info", "evil:site@1.1.0"]).status.success());

    // A release signed with the publisher's own key, naming a tree that climbs out.
    let tree = hostile_tree(vec![
        AssetEntry::of("../escaped.txt", &payload, false),
        AssetEntry::of("ok.txt", &payload, false),
    ]);
    let total = 2 * payload.len() as u64;
    let rec = signed_release(&a, "evil:site", "2.0.0", &component, &tree, 2, total);
    // A cannot check a tree it does not hold: the record is accepted and announced.
    let (status, v) = http_post(&a, "/v1/records/signed", rec.bytes.clone());
    assert_eq!(status, 200, "{v}");
    let tree_cid = upload(&a, &tree);
    // Once it holds the tree, a submission naming it is refused at once.
    let again = signed_release(&a, "evil:site", "3.0.0", &component, &tree, 2, total);
    let (status, v) = http_post(&a, "/v1/records/signed", again.bytes.clone());
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("escapes"),
        "{v}"
    );

    wait_until(DEADLINE, "C to learn evil:site@2.0.0", || {
        c.ferry(&["info", "evil:site@2.0.0"]).status.success()
    });
    let out = net.path("out");
    let res = c.ferry(&[
        "fetch",
        "evil:site@2.0.0",
        "--with-assets",
        "-o",
        &out.display().to_string(),
    ]);
    let err = stderr_text(&res);
    println!("hostile tree on fetch: {err}");
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("../escaped.txt")
            && err.contains("escapes")
            && err.contains("evil:site@2.0.0"),
        "the message names the release and the path: {err}"
    );
    assert!(
        !net.path("escaped.txt").exists(),
        "nothing written outside the target"
    );
    assert!(
        !out.exists() || fs::read_dir(&out).expect("out").next().is_none(),
        "nothing written inside it either"
    );
    assert!(
        !blob_files(&c.dir).contains(&tree_cid),
        "C did not keep the refused tree: {:?}",
        blob_files(&c.dir)
    );
    let _: Value = c.ferry_json(&["info", "evil:site"]);
}
