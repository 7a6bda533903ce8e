//! Discovery across two real nodes: target checks against a world published to the
//! registry, documents published with a release, lookup by content, and a release whose
//! signed summary lies about its bytes. Needs the corpus (`FERRY_CORPUS`) for real HTTP
//! proxies and the real `wasi:http@0.2.0` WIT package.

use ferry_protocol::component::Summary;
use ferry_protocol::record::{Body, RECORD_FORMAT, Record, Release};
use ferry_protocol::{ContentId, Keypair, SignedRecord, chunk};
use serde_json::Value;

use super::corpus::Corpus;
use super::support::{DEADLINE, Net, Node, cid_of, http_post, stderr_text, wait_until};

/// The upstream `wasi:http@0.2.0` package, encoded as a binary WIT package from the
/// corpus's `wit/wasi-0.2.0/` text, with its dependencies pushed first.
fn upstream_wasi_http(corpus: &Corpus) -> Vec<u8> {
    let root = corpus.root.join("wit/wasi-0.2.0");
    let mut resolve = wit_parser::Resolve::new();
    let mut http = None;
    for dir in [
        "io",
        "clocks",
        "random",
        "filesystem",
        "sockets",
        "cli",
        "http",
    ] {
        let (id, _) = resolve
            .push_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("parsing {}/{dir}: {e:#}", root.display()));
        http = Some(id);
    }
    wit_component::encode(&resolve, http.expect("http was pushed"), false)
        .expect("encoding wasi:http")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

#[test]
fn check_documents_content_lookup_and_lying_summaries() {
    let Some(corpus) = Corpus::from_env() else {
        return;
    };
    let file = |rel: &str| corpus.root.join(rel).display().to_string();
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut b = Node::join(net.path("b"), &a.network);
    b.start(&[a.tcp_addr()]);
    for ns in ["wasi", "demo"] {
        a.ferry_json(&["namespace", "define", ns]);
    }

    // The real wasi:http@0.2.0 WIT package (encoded here from the upstream WIT text:
    // the corpus's binary copies are trimmed variants whose proxy world lacks
    // wasi:random), and components built against it.
    let http = net.path("wasi-http.wasm");
    std::fs::write(&http, upstream_wasi_http(&corpus)).expect("writing wasi-http.wasm");
    a.ferry_json(&[
        "publish",
        &http.display().to_string(),
        "--package",
        "wasi:http",
        "--version",
        "0.2.0",
    ]);
    let readme = net.path("README.md");
    std::fs::write(&readme, "# proxy\n\nAn HTTP proxy for tests.\n").expect("writing README");
    let license = net.path("LICENSE");
    std::fs::write(&license, "Apache License\nVersion 2.0, January 2004\n").expect("LICENSE");
    let published = a.ferry_json(&[
        "publish",
        &file("components/wac/dummy_wasi_http@0.2.0.wasm"),
        "--package",
        "demo:proxy",
        "--version",
        "1.0.0",
        "--readme",
        &readme.display().to_string(),
        "--license-file",
        &license.display().to_string(),
        "--source-repo",
        "https://example.org/proxy.git",
        "--source-rev",
        "abc123",
    ]);
    for (rel, pkg) in [
        (
            "components/wac/dummy_wasi_http@0.2.3.wasm",
            "demo:newer-proxy",
        ),
        (
            "components/wasmcloud/http_hello_world_rust.wasm",
            "demo:hello",
        ),
    ] {
        a.ferry_json(&[
            "publish",
            &file(rel),
            "--package",
            pkg,
            "--version",
            "1.0.0",
        ]);
    }
    wait_until(DEADLINE, "B to know the 4 packages", || {
        b.package_count() == Some(4)
    });

    // Target checks on B, against the world as published (fetched and decoded there).
    let fits = b.ferry_json(&[
        "check",
        "demo:proxy@1.0.0",
        "--world",
        "wasi:http/proxy@0.2.0",
    ]);
    assert_eq!(fits["fits"], true, "{fits}");
    let local = b.ferry_json(&[
        "check",
        &file("components/wac/dummy_wasi_http@0.2.0.wasm"),
        "--world",
        "wasi:http/proxy@0.2.0",
    ]);
    assert_eq!(local["fits"], true, "a local file is checked too: {local}");
    for (pkg, why) in [
        ("demo:newer-proxy@1.0.0", "wasi:http/types@0.2.3"),
        ("demo:hello@1.0.0", "wasi:filesystem/types@0.2.0"),
    ] {
        let out = b.ferry(&["--json", "check", pkg, "--world", "wasi:http/proxy@0.2.0"]);
        assert_eq!(out.status.code(), Some(1), "{pkg} does not fit: exit 1");
        let v: Value = serde_json::from_slice(&out.stdout).expect("check --json");
        assert_eq!(v["fits"], false, "{v}");
        assert!(
            strings(&v["missing_imports"]).iter().any(|i| i == why),
            "{pkg}: missing imports name {why}: {v}"
        );
    }
    let out = b.ferry(&[
        "check",
        "demo:proxy@1.0.0",
        "--world",
        "wasi:http/nope@0.2.0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("no world `nope`"),
        "{}",
        stderr_text(&out)
    );

    // Documents and source reference, read on B.
    let info = b.ferry_json(&["info", "demo:proxy@1.0.0"]);
    let r = &info["versions"][0];
    assert_eq!(
        r["attachments"]["repository"],
        "https://example.org/proxy.git"
    );
    assert_eq!(r["attachments"]["revision"], "abc123");
    assert!(
        r["capabilities"].as_array().is_some_and(|c| !c.is_empty()),
        "{r}"
    );
    let text = b.ferry(&["readme", "demo:proxy"]);
    assert!(text.status.success(), "{}", stderr_text(&text));
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).trim_end(),
        "# proxy\n\nAn HTTP proxy for tests."
    );
    let lic = b.ferry(&["license", "demo:proxy@1.0.0"]);
    assert!(String::from_utf8_lossy(&lic.stdout).starts_with("Apache License"));
    let none = b.ferry(&["readme", "demo:hello"]);
    assert!(!none.status.success());
    assert!(
        stderr_text(&none).contains("without a readme"),
        "{}",
        stderr_text(&none)
    );

    // Lookup by content, as a CID and as sha256.
    let cid = published["cid"].as_str().expect("cid");
    for key in [cid, published["sha256"].as_str().expect("sha256")] {
        let v = b.ferry_json(&["info", key]);
        assert_eq!(v["releases"][0]["package"], "demo:proxy", "{v}");
        assert_eq!(v["releases"][0]["version"], "1.0.0");
    }

    // A key granted release rights signs a release whose summary claims exports the
    // bytes do not have. A takes it (it has not got the bytes to check), B downloads
    // the bytes, recomputes the summary and refuses it; so does A once it holds them.
    let liar = Keypair::from_seed([42; 32]);
    a.ferry_json(&[
        "grant",
        "demo:proxy",
        &liar.public().to_string(),
        "--perm",
        "release",
    ]);
    let bytes = super::support::small_component("liar");
    let head = a.ferry_json(&["info", "demo:proxy"])["head"].clone();
    let wait_head = |n: &Node, seq: u64| {
        wait_until(DEADLINE, "the head to reach B", || {
            n.ferry_json(&["info", "demo:proxy"])["head"]["seq"].as_u64() == Some(seq)
        })
    };
    wait_head(&b, head["seq"].as_u64().expect("seq"));
    let mut claimed = ferry_protocol::component::check(&bytes)
        .expect("a valid component")
        .summary;
    claimed.exports = vec!["wasi:http/incoming-handler@0.2.0".into()];
    let record = lying_release(&a, &liar, &head, &bytes, claimed);
    let (status, v) = http_post(&a, "/v1/records/signed", record.bytes.clone());
    assert_eq!(status, 200, "{v}");
    let (status, v) = http_post(&a, "/v1/blobs", bytes.clone());
    assert_eq!(status, 200, "{v}");
    wait_head(&b, head["seq"].as_u64().expect("seq") + 1);
    let hits = b.ferry_json(&["search", "--implements", "wasi:http/incoming-handler@0.2"]);
    assert!(
        hits.as_array()
            .is_some_and(|h| h.iter().any(|h| h["version"] == "2.0.0")),
        "before anyone checked, the announced summary is searchable: {hits}"
    );
    let out = b.ferry(&[
        "fetch",
        "demo:proxy@2.0.0",
        "-o",
        &net.path("x.wasm").display().to_string(),
    ]);
    assert!(!out.status.success(), "a lying release must not install");
    let err = stderr_text(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("demo:proxy@2.0.0") && err.contains("does not match"),
        "{err}"
    );
    assert!(!net.path("x.wasm").exists(), "nothing written");
    let v = b.ferry_json(&["info", "demo:proxy@2.0.0"]);
    assert_eq!(v["versions"][0]["summary"], "refused", "{v}");
    let hits = b.ferry_json(&["search", "--implements", "wasi:http/incoming-handler@0.2"]);
    assert!(
        hits.as_array()
            .is_some_and(|h| h.iter().all(|h| h["version"] != "2.0.0")),
        "a refused release is no longer found: {hits}"
    );
    // Resolution skips it: the newest matching version is the honest 1.0.0.
    let v = b.ferry_json(&[
        "fetch",
        "demo:proxy",
        "-o",
        &net.path("y.wasm").display().to_string(),
    ]);
    assert_eq!(v["version"], "1.0.0", "{v}");
    let out = a.ferry(&[
        "fetch",
        "demo:proxy@2.0.0",
        "-o",
        &net.path("z.wasm").display().to_string(),
    ]);
    assert!(
        !out.status.success(),
        "A refuses it too once it holds the bytes"
    );

    // Submitting a lying release where the bytes are already present is refused at once.
    let head = a.ferry_json(&["info", "demo:proxy"])["head"].clone();
    let mut claimed = ferry_protocol::component::check(&bytes)
        .expect("valid")
        .summary;
    claimed.imports.push("wasi:sockets/tcp@0.2.0".into());
    let mut record = lying_release(&a, &liar, &head, &bytes, claimed);
    record = resign_version(&liar, record, "3.0.0");
    let (status, v) = http_post(&a, "/v1/records/signed", record.bytes.clone());
    assert_eq!(status, 422, "{v}");
    assert!(v.to_string().contains("does not match"), "{v}");
    let after = a.ferry_json(&["info", "demo:proxy"])["head"]["seq"].clone();
    assert_eq!(after, head["seq"], "a refused record changes nothing");
    let _ = cid_of(&bytes);
}

/// A release of `bytes` as `demo:proxy@2.0.0` after `head`, claiming `summary`.
fn lying_release(
    a: &Node,
    key: &Keypair,
    head: &Value,
    bytes: &[u8],
    summary: Summary,
) -> SignedRecord {
    let network = a.network.parse().expect("the network id");
    let prev = head["id"]
        .as_str()
        .expect("head id")
        .parse()
        .expect("a record id");
    SignedRecord::sign(
        key,
        Record {
            format: RECORD_FORMAT,
            network: Some(network),
            log: "demo:proxy".into(),
            seq: head["seq"].as_u64().expect("seq") + 1,
            prev: Some(prev),
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            body: Body::Release(Release {
                version: "2.0.0".into(),
                kind: ferry_protocol::component::PackageKind::Component,
                content: ContentId::of(bytes),
                size: bytes.len() as u64,
                chunk_size: chunk::CHUNK_SIZE,
                chunks: serde_bytes::ByteBuf::from(chunk::digests(bytes, chunk::CHUNK_SIZE)),
                description: Some("claims to be an HTTP handler".into()),
                license: None,
                summary: Some(summary),
                attachments: Default::default(),
            }),
        },
    )
}

/// The same record for another version, signed again.
fn resign_version(key: &Keypair, rec: SignedRecord, version: &str) -> SignedRecord {
    let mut r = rec.record;
    if let Body::Release(rel) = &mut r.body {
        rel.version = version.into();
    }
    SignedRecord::sign(key, r)
}
