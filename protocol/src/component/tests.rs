//! Tests for [`super::check`]: in-process fixtures (no external files needed)
//! and, when `FERRY_CORPUS` is set, every binary listed in the corpus MANIFEST.

use super::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The classification part of [`super::Checked`]; these tests are about accepting and
/// refusing, the summary has its own tests.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checked {
    kind: PackageKind,
    wit_package: Option<String>,
}

fn classify(c: super::Checked) -> Checked {
    Checked {
        kind: c.kind,
        wit_package: c.wit_package,
    }
}

fn check(bytes: &[u8]) -> Result<Checked, ComponentError> {
    super::check(bytes).map(classify)
}

fn check_with_limit(bytes: &[u8], max: u64) -> Result<Checked, ComponentError> {
    super::check_with_limit(bytes, max).map(classify)
}

const DEMO_WIT: &str = r#"
package ferry:demo@0.1.0;

interface greet {
    record greeting { text: string, times: u32 }
    greet: func(name: string) -> greeting;
}

world demo {
    import log: func(msg: string);
    export greet;
}
"#;

/// The demo world as (resolve, package, core module with embedded WIT).
fn demo_parts() -> Result<(Resolve, wit_parser::PackageId, Vec<u8>), Box<dyn std::error::Error>> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("demo.wit", DEMO_WIT)?;
    let world = resolve.select_world(&[pkg], None)?;
    let mut module =
        wit_component::dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        StringEncoding::UTF8,
        false,
    )?;
    Ok((resolve, pkg, module))
}

/// A real component built in-process from the demo world.
fn demo_component() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let (_, _, module) = demo_parts()?;
    Ok(ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .encode()?)
}

/// The demo package encoded as a binary WIT package.
fn demo_wit_package() -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let (resolve, pkg, _) = demo_parts()?;
    Ok(wit_component::encode(&resolve, pkg, false)?)
}

fn component() -> Checked {
    Checked {
        kind: PackageKind::Component,
        wit_package: None,
    }
}

fn wit(name: &str) -> Checked {
    Checked {
        kind: PackageKind::Wit,
        wit_package: Some(name.to_string()),
    }
}

/// Offsets at which the top-level sections of a wasm binary end (plus 8, the
/// header). A prefix cut exactly there may legitimately be a valid binary.
fn section_boundaries(bytes: &[u8]) -> BTreeSet<usize> {
    let mut ends = BTreeSet::from([8]);
    let mut pos = 8;
    while pos < bytes.len() {
        pos += 1; // section id
        let (mut size, mut shift) = (0usize, 0);
        while let Some(&b) = bytes.get(pos) {
            pos += 1;
            size |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        pos += size;
        ends.insert(pos);
    }
    ends
}

#[test]
fn component_built_in_process_is_a_component() -> TestResult {
    assert_eq!(check(&demo_component()?), Ok(component()));
    Ok(())
}

#[test]
fn wit_package_reports_its_own_name() -> TestResult {
    assert_eq!(check(&demo_wit_package()?), Ok(wit("ferry:demo@0.1.0")));
    Ok(())
}

#[test]
fn core_modules_are_refused() -> TestResult {
    assert_eq!(
        check(&wat::parse_str("(module)")?),
        Err(ComponentError::CoreModule)
    );
    let module = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7))"#)?;
    assert_eq!(check(&module), Err(ComponentError::CoreModule));
    Ok(())
}

#[test]
fn core_module_with_embedded_wit_gets_the_adapter_hint() -> TestResult {
    let (_, _, module) = demo_parts()?;
    let err = check(&module);
    assert_eq!(err, Err(ComponentError::CoreModuleWithWit));
    // Any `component-type*` name counts (toolchains append suffixes).
    let suffixed = wat::parse_str(r#"(module (@custom "component-type:wit-bindgen:0.1" ""))"#)?;
    assert_eq!(check(&suffixed), Err(ComponentError::CoreModuleWithWit));
    Ok(())
}

#[test]
fn empty_and_non_wasm_are_refused() {
    assert_eq!(check(b""), Err(ComponentError::Empty));
    assert_eq!(check(b"hello"), Err(ComponentError::NotWasm));
    assert_eq!(check(b"\0as"), Err(ComponentError::NotWasm));
    assert_eq!(check(b"(component)"), Err(ComponentError::NotWasm));
    assert!(matches!(
        check(b"\0asm\x0d\x00"),
        Err(ComponentError::Invalid(_))
    ));
}

#[test]
fn unknown_versions_are_refused() {
    // The obsolete pre-standard component encoding (version 0x0c, layer 1).
    assert_eq!(
        check(b"\0asm\x0c\x00\x01\x00"),
        Err(ComponentError::UnknownVersion { version: 0x1000c })
    );
    assert_eq!(
        check(b"\0asm\x0a\x00\x01\x01"),
        Err(ComponentError::UnknownVersion {
            version: 0x0101_000a
        })
    );
    assert_eq!(
        check(b"\0asm\x02\x00\x00\x00rest"),
        Err(ComponentError::UnknownVersion { version: 2 })
    );
    let msg = ComponentError::UnknownVersion { version: 0x1000c }.to_string();
    assert_eq!(
        msg,
        "unsupported wasm binary version 0x1000c: re-encode it with a current wasm-tools"
    );
}

#[test]
fn component_header_alone_is_an_empty_component() {
    // `(component)` encodes to just the header: valid, and not a WIT package.
    assert_eq!(check(b"\0asm\x0d\x00\x01\x00"), Ok(component()));
}

#[test]
fn invalid_component_message_is_one_line_with_offset() {
    // Header + an export of type 0 when no type is defined (the wac fixture
    // `package-invalid-wasm`).
    let bytes = b"\0asm\x0d\x00\x01\x00\x0b\x07\x01\x00\x01\x74\x03\x00\x00";
    match check(bytes) {
        Err(ComponentError::Invalid(msg)) => {
            assert!(!msg.contains('\n'), "{msg}");
            assert!(msg.contains("(at offset 0x"), "{msg}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn decoder_panic_becomes_invalid() -> TestResult {
    // Valid component importing a function *type*: wit-parser 0.263 hits
    // `unreachable!()` decoding it (decoding.rs, `register_type_export`).
    let bytes = wat::parse_str(r#"(component (type $f (func)) (import "f" (type (eq $f))))"#)?;
    assert!(
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&bytes)
            .is_ok()
    );
    match check(&bytes) {
        Err(ComponentError::Invalid(msg)) => assert!(!msg.contains('\n'), "{msg}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    Ok(())
}

#[test]
fn size_limit_is_enforced() -> TestResult {
    let bytes = demo_component()?;
    let size = u64::try_from(bytes.len())?;
    assert_eq!(
        check_with_limit(&bytes, size - 1),
        Err(ComponentError::TooLarge {
            size,
            max: size - 1
        })
    );
    assert_eq!(check_with_limit(&bytes, size), Ok(component()));
    assert_eq!(
        ComponentError::TooLarge { size: 10, max: 4 }.to_string(),
        "file is 10 bytes, over the 4-byte limit"
    );
    Ok(())
}

#[test]
fn every_truncation_is_refused_without_panic() -> TestResult {
    for bytes in [demo_component()?, demo_wit_package()?] {
        let boundaries = section_boundaries(&bytes);
        for len in 0..bytes.len() {
            let result = check(&bytes[..len]);
            if !boundaries.contains(&len) {
                assert!(
                    result.is_err(),
                    "prefix of {len} bytes accepted: {result:?}"
                );
            }
            if let Err(e) = result {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }
    Ok(())
}

#[test]
fn corrupted_bytes_never_panic() -> TestResult {
    for bytes in [demo_component()?, demo_wit_package()?] {
        // Every single-byte corruption from a fixed set of masks.
        for i in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut corrupted = bytes.clone();
                if let Some(b) = corrupted.get_mut(i) {
                    *b ^= mask;
                }
                if let Err(e) = check(&corrupted) {
                    assert!(!e.to_string().contains('\n'), "{e}");
                }
            }
        }
        // Deterministic multi-byte corruptions (xorshift, fixed seed).
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            let mut corrupted = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = usize::try_from(next() % u64::try_from(bytes.len())?)?;
                if let Some(b) = corrupted.get_mut(i) {
                    *b = next().to_le_bytes()[0];
                }
            }
            let _ = check(&corrupted);
        }
    }
    Ok(())
}

#[test]
fn package_kind_serializes_kebab_case() -> TestResult {
    for (kind, name) in [
        (PackageKind::Component, "component"),
        (PackageKind::Wit, "wit"),
    ] {
        let mut buf = Vec::new();
        ciborium::into_writer(&kind, &mut buf)?;
        let text: String = ciborium::from_reader(buf.as_slice())?;
        assert_eq!(text, name);
        let back: PackageKind = ciborium::from_reader(buf.as_slice())?;
        assert_eq!(back, kind);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------

/// One row of the MANIFEST "Binaries" table.
struct Row {
    path: String,
    size: String,
    kind: String,
    valid: String,
    exports: String,
}

/// Parses the rows of the `## Binaries` table of the corpus MANIFEST.
fn manifest_rows(manifest: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_binaries = false;
    for line in manifest.lines() {
        if line.starts_with("## ") {
            in_binaries = line.trim() == "## Binaries";
            continue;
        }
        if !in_binaries || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_string();
        rows.push(Row {
            path: cell(1).trim_matches('`').to_string(),
            size: cell(3),
            kind: cell(4),
            valid: cell(5),
            exports: cell(7),
        });
    }
    rows
}

/// What the MANIFEST says `check` must answer for a row.
fn expected(row: &Row, bytes: &[u8]) -> Result<Checked, ComponentError> {
    let header_word = bytes
        .get(4..8)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map(u32::from_le_bytes);
    match row.kind.as_str() {
        "component" if row.valid == "ok" => Ok(component()),
        "component" => Err(ComponentError::Invalid(String::from("<any>"))),
        "wit-pkg" => {
            // "package `wasi:http@0.2.0` (11 interfaces, 2 worlds)"
            let name = row.exports.split('`').nth(1).unwrap_or_default();
            Ok(wit(name))
        }
        "core-module" => Err(ComponentError::CoreModule),
        "core+wit" => Err(ComponentError::CoreModuleWithWit),
        "not-wasm" if row.size == "0" => Err(ComponentError::Empty),
        "not-wasm" => Err(ComponentError::NotWasm),
        kind if kind == "unknown-version" || kind.starts_with("component v0x") => {
            Err(ComponentError::UnknownVersion {
                version: header_word.unwrap_or_default(),
            })
        }
        other => panic!("unknown kind {other:?} in MANIFEST row for {}", row.path),
    }
}

fn matches_expectation(
    got: &Result<Checked, ComponentError>,
    want: &Result<Checked, ComponentError>,
) -> bool {
    match (got, want) {
        (Err(ComponentError::Invalid(_)), Err(ComponentError::Invalid(_))) => true,
        _ => got == want,
    }
}

fn wasm_files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            wasm_files_under(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "wasm") {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn corpus_binaries_match_manifest() -> TestResult {
    let Some(corpus) = std::env::var_os("FERRY_CORPUS") else {
        println!("FERRY_CORPUS is not set: skipping the corpus test");
        return Ok(());
    };
    let corpus = PathBuf::from(corpus);
    let manifest = std::fs::read_to_string(corpus.join("MANIFEST.md"))?;
    let rows = manifest_rows(&manifest);

    let mut failures = Vec::new();
    let mut listed = BTreeSet::new();
    for row in &rows {
        listed.insert(corpus.join(&row.path));
        let bytes = std::fs::read(corpus.join(&row.path))?;
        let got = check(&bytes);
        let want = expected(row, &bytes);
        let shown = match &got {
            Ok(Checked {
                kind: PackageKind::Component,
                ..
            }) => "component".to_string(),
            Ok(Checked {
                kind: PackageKind::Wit,
                wit_package,
            }) => format!("wit {}", wit_package.as_deref().unwrap_or("?")),
            Err(e) => format!("refused: {e}"),
        };
        println!("| `{}` | {} | {shown} |", row.path, row.kind);
        if let Err(e) = &got {
            assert!(!e.to_string().contains('\n'), "{}: {e}", row.path);
        }
        if !matches_expectation(&got, &want) {
            failures.push(format!("{}: got {got:?}, want {want:?}", row.path));
        }
    }

    // Binaries on disk that the MANIFEST does not list: still must not panic.
    let mut on_disk = Vec::new();
    wasm_files_under(&corpus.join("components"), &mut on_disk)?;
    wasm_files_under(&corpus.join("wit/encoded"), &mut on_disk)?;
    for path in on_disk.iter().filter(|p| !listed.contains(*p)) {
        let got = check(&std::fs::read(path)?);
        println!("(not in MANIFEST) {}: {got:?}", path.display());
    }

    println!("checked {} MANIFEST binaries", rows.len());
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert!(
        rows.len() > 60,
        "only {} rows parsed from MANIFEST",
        rows.len()
    );
    Ok(())
}

/// The root world's imports and exports as `wasm-tools component wit` printed them:
/// two-space-indented `import`/`export` lines inside `world root { ... }`.
fn expected_world(wit: &str) -> Option<(Vec<String>, Vec<String>)> {
    let mut lines = wit.lines().skip_while(|l| !l.starts_with("world root {"));
    lines.next()?;
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    for l in lines.take_while(|l| *l != "}") {
        let (list, rest) = if let Some(r) = l.strip_prefix("  import ") {
            (&mut imports, r)
        } else if let Some(r) = l.strip_prefix("  export ") {
            (&mut exports, r)
        } else {
            continue;
        };
        let name = match rest.split_once(": ") {
            Some((n, _)) => n,
            None => rest.trim_end_matches(';'),
        };
        list.push(name.to_string());
    }
    Some((imports, exports))
}

#[test]
fn corpus_summaries_match_expected_wit() -> TestResult {
    let Some(corpus) = std::env::var_os("FERRY_CORPUS") else {
        println!("FERRY_CORPUS is not set: skipping the corpus summary test");
        return Ok(());
    };
    let corpus = PathBuf::from(corpus);
    let mut files = Vec::new();
    wasm_files_under(&corpus.join("components"), &mut files)?;
    let (mut compared, mut failures) = (0, Vec::new());
    for file in files {
        let rel = file.strip_prefix(&corpus)?;
        let wit_path = corpus
            .join("expected-wit")
            .join(format!("{}.wit", rel.display()));
        let Ok(wit) = std::fs::read_to_string(&wit_path) else {
            continue;
        };
        let Ok(checked) = super::check(&std::fs::read(&file)?) else {
            continue;
        };
        if checked.kind != PackageKind::Component {
            continue;
        }
        let Some((imports, exports)) = expected_world(&wit) else {
            failures.push(format!(
                "{}: no `world root` in expected WIT",
                rel.display()
            ));
            continue;
        };
        compared += 1;
        if checked.summary.imports != imports || checked.summary.exports != exports {
            failures.push(format!(
                "{}: got imports {:?} exports {:?}, expected {imports:?} {exports:?}",
                rel.display(),
                checked.summary.imports,
                checked.summary.exports
            ));
        }
    }
    println!("compared {compared} corpus components with expected-wit");
    assert!(compared >= 40, "only {compared} components compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn wit_package_summary_lists_interfaces_and_worlds() -> TestResult {
    let c = super::check(&demo_wit_package()?)?;
    assert_eq!(c.summary.wit_package.as_deref(), Some("ferry:demo@0.1.0"));
    assert_eq!(c.summary.interfaces, ["ferry:demo/greet@0.1.0"]);
    assert_eq!(c.summary.worlds, ["ferry:demo/demo@0.1.0"]);
    let shape = analysis::world_shape(&demo_wit_package()?, "demo")?;
    let component = super::check(&demo_component()?)?;
    assert_eq!(shape.exports, component.summary.exports);
    assert!(analysis::world_shape(&demo_wit_package()?, "nope").is_err());
    Ok(())
}

/// `bytes` with a custom section `name` appended (sizes under 128 bytes).
fn with_custom_section(mut bytes: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    let size = 1 + name.len() + data.len();
    assert!(
        size < 128 && name.len() < 128,
        "single-byte LEB128 sizes only"
    );
    bytes.extend_from_slice(&[0, size as u8, name.len() as u8]);
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn metadata_license_is_read_even_when_it_is_not_spdx() -> TestResult {
    let plain = demo_component()?;
    assert_eq!(metadata_license(&plain), None);
    let mit = with_custom_section(plain.clone(), "licenses", b"MIT OR Apache-2.0");
    assert_eq!(metadata_license(&mit).as_deref(), Some("MIT OR Apache-2.0"));
    // wasm-metadata refuses this section; the claim must still reach the policy check.
    let free = with_custom_section(plain.clone(), "licenses", b"Totally Free");
    assert_eq!(metadata_license(&free).as_deref(), Some("Totally Free"));
    assert!(super::check(&free).is_ok(), "still a valid component");
    let blank = with_custom_section(plain, "licenses", b"  ");
    assert_eq!(metadata_license(&blank), None);
    Ok(())
}
