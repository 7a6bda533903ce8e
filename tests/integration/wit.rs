//! `ferry wit fetch` and `ferry new` through the CLI on a real node.
//!
//! * WIT packages built at test time (wit-parser + wit-component), published, then
//!   fetched into a project's `wit/deps` with their own dependencies; the result
//!   must parse and resolve with wit-parser, be locked, and be reproducible.
//! * The corpus's WASI 0.2.0 packages (needs `FERRY_CORPUS`), published from their
//!   WIT text: a world that includes `wasi:http/proxy@0.2.0` gets all seven packages
//!   it needs, transitively.
//! * Each template of `ferry new` parses; the `wit` one publishes as a WIT package.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::integration::corpus::Corpus;
use crate::integration::support::{Net, Node, ferry_bin, sha256_hex, small_component, stderr_text};

/// `ferry --json wit fetch --project DIR`.
fn wit_fetch(node: &Node, project: &Path) -> std::process::Output {
    node.ferry(&[
        "--json",
        "wit",
        "fetch",
        "--project",
        &project.display().to_string(),
    ])
}

fn wit_fetch_ok(node: &Node, project: &Path) -> Value {
    let out = wit_fetch(node, project);
    assert!(
        out.status.success(),
        "wit fetch in {} failed: {}",
        project.display(),
        stderr_text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// A project folder whose `wit/world.wit` is `world`.
fn project_with(root: &Path, world: &str) -> std::path::PathBuf {
    fs::create_dir_all(root.join("wit")).expect("creating wit/");
    fs::write(root.join("wit/world.wit"), world).expect("writing the world");
    root.to_path_buf()
}

/// Resolves `<project>/wit` with wit-parser as toolchains do and returns the names
/// of the world's imports.
fn resolve_world(project: &Path, world: &str) -> Vec<String> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(project.join("wit"))
        .unwrap_or_else(|e| panic!("wit-parser cannot resolve {}: {e:#}", project.display()));
    let w = resolve
        .select_world(&[pkg], Some(world))
        .unwrap_or_else(|e| panic!("no world {world}: {e:#}"));
    resolve.worlds[w]
        .imports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect()
}

/// `[[wit]]` entries of the project's lock as (name, version, digest).
fn wit_locked(project: &Path) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(project.join("ferry.lock")).expect("reading ferry.lock");
    let v: toml::Value = toml::from_str(&text).expect("TOML");
    v.get("wit")
        .and_then(|w| w.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("version"), s("digest"))
        })
        .collect()
}

fn publish(node: &Node, file: &Path, package: &str, version: &str) -> Value {
    node.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        package,
        "--version",
        version,
    ])
}

fn new_project(dir: &Path, name: &str, template: &str) -> std::process::Output {
    Command::new(ferry_bin())
        .args(["--json", "new", name, "--template", template, "--path"])
        .arg(dir)
        .env_remove("FERRY_DATA_DIR")
        .output()
        .expect("running ferry new")
}

#[test]
fn wit_fetch_writes_built_packages_and_their_dependencies() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    a.ferry_json(&["namespace", "define", "demo"]);

    // demo:mid uses demo:base; both encoded as binary WIT packages at test time.
    let mut resolve = wit_parser::Resolve::default();
    let base = resolve
        .push_str(
            "base.wit",
            "package demo:base@1.0.0;\ninterface types {\n  record point { x: s32, y: s32 }\n}\n",
        )
        .expect("base parses");
    let mid = resolve
        .push_str(
            "mid.wit",
            "package demo:mid@1.0.0;\ninterface api {\n  use demo:base/types@1.0.0.{point};\n  origin: func() -> point;\n}\n",
        )
        .expect("mid parses");
    let mut digests = Vec::new();
    for (pkg, name) in [(base, "demo:base"), (mid, "demo:mid")] {
        let bytes = wit_component::encode(&resolve, pkg, false).expect("encoding");
        let file = net.path(&format!("{}.wasm", name.replace(':', "-")));
        fs::write(&file, &bytes).expect("writing");
        let v = publish(&a, &file, name, "1.0.0");
        assert_eq!(v["kind"], "wit", "{v}");
        digests.push((name.to_string(), format!("sha256:{}", sha256_hex(&bytes))));
    }
    // A component is not a WIT dependency.
    let comp = net.path("comp.wasm");
    fs::write(&comp, small_component("comp")).expect("writing");
    publish(&a, &comp, "demo:comp", "1.0.0");

    // A project using demo:mid (and, through it, demo:base) and a local package.
    let p = project_with(
        &net.path("app"),
        "package app:main@0.1.0;\nworld main {\n  import demo:mid/api@1.0.0;\n  import loc:al/thing@1.0.0;\n}\n",
    );
    fs::create_dir_all(p.join("wit/deps")).expect("mkdir");
    fs::write(
        p.join("wit/deps/local.wit"),
        "package loc:al@1.0.0;\ninterface thing {\n  f: func();\n}\n",
    )
    .expect("writing a local dependency");
    let v = wit_fetch_ok(&a, &p);
    assert_eq!(v["package"], "app:main@0.1.0", "{v}");
    assert_eq!(v["local"], serde_json::json!(["loc:al@1.0.0"]), "{v}");
    assert_eq!(v["written"], 2, "{v}");
    for dir in ["demo-mid-1.0.0", "demo-base-1.0.0"] {
        let f = p.join("wit/deps").join(dir).join("package.wit");
        assert!(f.is_file(), "{} missing: {v}", f.display());
    }
    let imports = resolve_world(&p, "main");
    assert!(
        imports.contains(&"demo:mid/api@1.0.0".to_string()),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"loc:al/thing@1.0.0".to_string()),
        "{imports:?}"
    );
    let locked = wit_locked(&p);
    assert_eq!(
        locked,
        vec![
            ("demo:base".into(), "1.0.0".into(), digests[0].1.clone()),
            ("demo:mid".into(), "1.0.0".into(), digests[1].1.clone()),
        ],
        "both packages locked with the digests of the published bytes"
    );
    let lock_text = fs::read_to_string(p.join("ferry.lock")).expect("lock");

    // A second run uses the lock and changes nothing.
    let v = wit_fetch_ok(&a, &p);
    assert_eq!(v["written"], 0, "{v}");
    assert_eq!(v["lock_written"], false, "{v}");
    assert!(
        v["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .all(|p| p["from"] == "lock"),
        "{v}"
    );
    assert_eq!(
        fs::read_to_string(p.join("ferry.lock")).expect("lock"),
        lock_text
    );

    // When wit/ stops using demo:mid, the folders ferry wrote go, and so do their
    // locks; the local package stays.
    fs::write(
        p.join("wit/world.wit"),
        "package app:main@0.1.0;\nworld main {\n  import loc:al/thing@1.0.0;\n}\n",
    )
    .expect("rewriting the world");
    let v = wit_fetch_ok(&a, &p);
    assert_eq!(v["removed"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(!p.join("wit/deps/demo-mid-1.0.0").exists());
    assert!(
        p.join("wit/deps/local.wit").is_file(),
        "the local package is left alone"
    );
    assert!(wit_locked(&p).is_empty(), "{v}");
    resolve_world(&p, "main");

    // References the registry cannot satisfy fail with the name, and write nothing.
    for (dir, world, needle) in [
        ("missing", "import demo:missing/x@1.0.0;", "demo:missing"),
        (
            "unversioned",
            "import demo:base/types;",
            "without a version",
        ),
        (
            "component",
            "import demo:comp/x@1.0.0;",
            "is a component, not a WIT package",
        ),
    ] {
        let q = project_with(
            &net.path(dir),
            &format!("package app:bad@0.1.0;\nworld bad {{\n  {world}\n}}\n"),
        );
        let out = wit_fetch(&a, &q);
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{dir}: {err}");
        assert!(err.contains(needle), "{dir}: {err}");
        assert!(!q.join("wit/deps").exists(), "{dir}: nothing written");
        assert!(!q.join("ferry.lock").exists(), "{dir}: no lock written");
    }

    // `ferry new --template wit` makes a package that publishes and is then fetched.
    let g = net.path("greeter");
    let out = new_project(&g, "demo:greeter", "wit");
    assert!(out.status.success(), "{}", stderr_text(&out));
    let v = publish(&a, &g.join("wit"), "demo:greeter", "0.1.0");
    assert_eq!(
        v["kind"], "wit",
        "the template publishes as a WIT package: {v}"
    );
    let user = project_with(
        &net.path("user"),
        "package app:user@0.1.0;\nworld user {\n  import demo:greeter/api@0.1.0;\n}\n",
    );
    wit_fetch_ok(&a, &user);
    assert!(resolve_world(&user, "user").contains(&"demo:greeter/api@0.1.0".to_string()));
}

#[test]
fn wit_fetch_resolves_the_corpus_wasi_http() {
    let Some(corpus) = Corpus::from_env() else {
        return;
    };
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    a.ferry_json(&["namespace", "define", "wasi"]);
    // The WASI 0.2.0 packages as WIT text, published in dependency order; `ferry
    // publish` encodes each as a binary WIT package, given the ones it uses.
    let text = corpus.root.join("wit/wasi-0.2.0");
    let order = [
        "io",
        "clocks",
        "random",
        "filesystem",
        "sockets",
        "cli",
        "http",
    ];
    for (i, name) in order.iter().enumerate() {
        let dir = text.join(name).display().to_string();
        let package = format!("wasi:{name}");
        let deps: Vec<String> = order[..i]
            .iter()
            .map(|d| text.join(d).display().to_string())
            .collect();
        let mut args = vec!["publish", &dir, "--package", &package, "--version", "0.2.0"];
        for d in &deps {
            args.extend_from_slice(&["--wit-dep", d]);
        }
        let v = a.ferry_json(&args);
        assert_eq!(v["kind"], "wit", "{v}");
    }
    let p = project_with(
        &net.path("proxy"),
        "package app:proxy@0.1.0;\nworld proxy {\n  include wasi:http/proxy@0.2.0;\n}\n",
    );
    let v = wit_fetch_ok(&a, &p);
    let mut got: Vec<String> = v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["package"].as_str().unwrap_or_default().to_string())
        .collect();
    got.sort();
    let want: Vec<String> = [
        "cli",
        "clocks",
        "filesystem",
        "http",
        "io",
        "random",
        "sockets",
    ]
    .iter()
    .map(|n| format!("wasi:{n}@0.2.0"))
    .collect();
    assert_eq!(
        got, want,
        "wasi:http and everything it needs, transitively: {v}"
    );
    let imports = resolve_world(&p, "proxy");
    for i in [
        "wasi:http/outgoing-handler@0.2.0",
        "wasi:random/random@0.2.0",
        "wasi:io/streams@0.2.0",
        "wasi:clocks/monotonic-clock@0.2.0",
    ] {
        assert!(
            imports.contains(&i.to_string()),
            "{i} not imported: {imports:?}"
        );
    }
    assert_eq!(wit_locked(&p).len(), 7);
    let v = wit_fetch_ok(&a, &p);
    assert_eq!(v["written"], 0, "reproducible: {v}");
}

#[test]
fn new_creates_projects_whose_wit_parses() {
    let net = Net::new();
    for template in ["rust", "js", "wit"] {
        let dir = net.path(template);
        let out = new_project(&dir, "acme:hello-world", template);
        assert!(out.status.success(), "{template}: {}", stderr_text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["package"], "acme:hello-world", "{v}");
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve
            .push_dir(dir.join("wit"))
            .expect("the template's wit/ parses");
        assert_eq!(
            resolve.packages[pkg].name.to_string(),
            "acme:hello-world@0.1.0"
        );
        resolve
            .select_world(&[pkg], Some("hello-world"))
            .expect("a world named after the package");
        let manifest: toml::Value =
            toml::from_str(&fs::read_to_string(dir.join("ferry.toml")).expect("ferry.toml"))
                .expect("ferry.toml is TOML");
        assert_eq!(
            manifest["package"]["name"].as_str(),
            Some("acme:hello-world")
        );
        let readme = fs::read_to_string(dir.join("README.md")).expect("README");
        assert!(
            readme.contains("ferry publish") && readme.contains("--package acme:hello-world"),
            "{readme}"
        );
        match template {
            "rust" => {
                let cargo: toml::Value = toml::from_str(
                    &fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml"),
                )
                .expect("TOML");
                assert!(
                    cargo["dependencies"].get("wit-bindgen").is_some(),
                    "{cargo}"
                );
                assert_eq!(
                    cargo["package"]["metadata"]["component"]["package"].as_str(),
                    Some("acme:hello-world")
                );
                let lib = fs::read_to_string(dir.join("src/lib.rs")).expect("lib.rs");
                assert!(
                    lib.contains("exports::acme::hello_world::api::Guest"),
                    "{lib}"
                );
                assert!(readme.contains("wasm32-wasip2"));
            }
            "js" => {
                let pkg: Value = serde_json::from_str(
                    &fs::read_to_string(dir.join("package.json")).expect("package.json"),
                )
                .expect("package.json is JSON");
                let build = pkg["scripts"]["build"].as_str().unwrap_or_default();
                assert!(
                    build.contains("componentize-js src/hello-world.js")
                        && build.contains("--wit wit"),
                    "{pkg}"
                );
                assert!(dir.join("src/hello-world.js").is_file());
            }
            _ => assert!(!dir.join("src").exists(), "a WIT project has no source"),
        }
    }
    // A non-empty folder and a bad name are refused.
    let out = new_project(&net.path("wit"), "acme:again", "wit");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("not empty"),
        "{}",
        stderr_text(&out)
    );
    let out = new_project(&net.path("bad"), "Bad_Name", "rust");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("Bad_Name"),
        "{}",
        stderr_text(&out)
    );
    assert!(!net.path("bad").exists(), "nothing created for a bad name");
}
