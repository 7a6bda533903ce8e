//! The shared corpus of real components (`$FERRY_CORPUS`): reading its MANIFEST and
//! turning each file into a package name, version and searchable description.
//!
//! The corpus is optional: tests that need it call [`Corpus::from_env`] and return
//! early (passing, with a note) when `FERRY_CORPUS` is unset. When it is set, it must
//! be complete: a missing manifest or file fails the test instead of skipping it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One row of the MANIFEST's `## Binaries` table.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the corpus root, e.g. `components/jco/adder.wasm`.
    pub rel: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Size the manifest lists.
    pub size: u64,
    /// Kind column: `component`, `wit-pkg`, `core-module`, `core+wit`, ...
    pub kind: String,
    /// Valid column: `ok` or an error text.
    pub valid: String,
    /// Exports / package column (for WIT packages: ``package `ns:name@ver` ...``).
    pub exports: String,
    /// Package name this test gives the file, `namespace:name`.
    pub package: String,
    /// A description with a word no other file's description has (see [`Entry::tag`]).
    pub description: String,
    /// That distinctive word.
    pub tag: String,
}

impl Entry {
    /// Whether Ferry must accept the file: a valid component or a binary WIT package
    /// (and nothing from `components/malformed/`).
    pub fn publishable(&self) -> bool {
        !self.rel.starts_with("components/malformed/")
            && ((self.kind == "component" && self.valid == "ok") || self.kind == "wit-pkg")
    }

    /// The namespace part of [`Entry::package`].
    pub fn namespace(&self) -> &str {
        self.package.split_once(':').map_or("", |(ns, _)| ns)
    }

    /// The name part of [`Entry::package`].
    pub fn name(&self) -> &str {
        self.package.split_once(':').map_or("", |(_, n)| n)
    }

    /// For a WIT package: the package name the manifest says it declares.
    pub fn wit_package(&self) -> Option<&str> {
        let rest = self.exports.strip_prefix("package `")?;
        rest.split('`').next()
    }
}

/// The corpus: its root and manifest rows.
pub struct Corpus {
    /// Root directory.
    pub root: PathBuf,
    /// Every row of the `## Binaries` table, in manifest order.
    pub entries: Vec<Entry>,
}

impl Corpus {
    /// The corpus named by `FERRY_CORPUS`, or None (after printing a note) when unset.
    /// A relative path is tried against the current directory (cargo runs tests in the
    /// cli package), the workspace root and the cli package directory.
    pub fn from_env() -> Option<Self> {
        let Some(raw) = std::env::var_os("FERRY_CORPUS").filter(|v| !v.is_empty()) else {
            eprintln!("note: FERRY_CORPUS is not set; skipping this corpus test");
            return None;
        };
        let raw = PathBuf::from(raw);
        let pkg_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let candidates = if raw.is_absolute() {
            vec![raw.clone()]
        } else {
            let cwd = std::env::current_dir().unwrap_or_default();
            vec![
                cwd.join(&raw),
                pkg_dir.join("..").join(&raw),
                pkg_dir.join(&raw),
            ]
        };
        let root = candidates
            .iter()
            .find(|c| c.join("MANIFEST.md").is_file())
            .unwrap_or_else(|| {
                panic!(
                    "FERRY_CORPUS={} has no MANIFEST.md (tried {candidates:?})",
                    raw.display()
                )
            })
            .clone();
        let text = std::fs::read_to_string(root.join("MANIFEST.md")).expect("reading MANIFEST.md");
        let entries = parse_binaries(&root, &text);
        assert!(
            !entries.is_empty(),
            "MANIFEST.md in {} lists no binaries",
            root.display()
        );
        Some(Self { root, entries })
    }

    /// Files Ferry must accept.
    pub fn publishable(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.publishable())
            .cloned()
            .collect()
    }

    /// Files Ferry must refuse.
    pub fn refused(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| !e.publishable())
            .cloned()
            .collect()
    }

    /// The digests the manifest's `## SHA-256 of every binary` block lists, by path.
    pub fn listed_sha256(&self) -> BTreeMap<String, String> {
        let text =
            std::fs::read_to_string(self.root.join("MANIFEST.md")).expect("reading MANIFEST.md");
        let mut in_block = false;
        let mut out = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with("## ") {
                in_block = line.starts_with("## SHA-256");
                continue;
            }
            if let Some((hex, rel)) = line.split_once("  ")
                && in_block
                && hex.len() == 64
            {
                out.insert(rel.trim().to_string(), hex.to_string());
            }
        }
        out
    }

    /// Every `*.wasm` file under the corpus root, as paths relative to it.
    pub fn wasm_files(&self) -> BTreeSet<String> {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else if p.extension().is_some_and(|x| x == "wasm")
                    && let Ok(rel) = p.strip_prefix(root)
                {
                    out.insert(rel.to_string_lossy().into_owned());
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.root, &self.root, &mut out);
        out
    }

    /// The root world's imports and exports that `wasm-tools component wit` printed for
    /// `rel` in `expected-wit/`, or None when the corpus has no such file.
    pub fn expected_world(&self, rel: &str) -> Option<(Vec<String>, Vec<String>)> {
        let wit =
            std::fs::read_to_string(self.root.join("expected-wit").join(format!("{rel}.wit")))
                .ok()?;
        // `world root {` ... `}` with two-space-indented `import`/`export` lines; an
        // item is `name: func(...)` / `name: interface { ... }` or `ns:pkg/iface@v;`.
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
            let name = rest
                .split_once(": ")
                .map_or(rest.trim_end_matches(';'), |(n, _)| n);
            list.push(name.to_string());
        }
        Some((imports, exports))
    }

    /// Every namespace the entries use.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|e| e.namespace().to_string())
            .collect()
    }
}

fn parse_binaries(root: &Path, text: &str) -> Vec<Entry> {
    let mut in_table = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            in_table = line.trim() == "## Binaries";
            continue;
        }
        if !in_table || !line.starts_with("| `") {
            continue;
        }
        // | `file` | origin | size | kind | valid | imports | exports | notes |
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cols.len() >= 9, "unexpected manifest row: {line}");
        let rel = cols[1].trim_matches('`').to_string();
        let idx = out.len();
        let (package, description, tag) = naming(&rel, idx);
        out.push(Entry {
            path: root.join(&rel),
            size: cols[3]
                .parse()
                .unwrap_or_else(|_| panic!("bad size in row: {line}")),
            kind: cols[4].to_string(),
            valid: cols[5].to_string(),
            exports: cols[7].to_string(),
            rel,
            package,
            description,
            tag,
        });
    }
    out
}

/// A kebab label from free text: lowercase words of `[a-z0-9]`, joined by single
/// dashes, each word starting with a letter (a digit-led word gets a `v` prefix).
pub fn kebab(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.starts_with(|c: char| c.is_ascii_digit()) {
                format!("v{w}")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Package name, description and distinctive description word for the file at `rel`
/// (the `idx`-th row). Namespace = origin folder (`components/<origin>/…`,
/// `wit/<origin>/…`), name = file stem; e.g. `wit/encoded/spin-deny-all/wasi-http.wasm`
/// becomes `encoded:wasi-http`, `components/wac/dummy_wasi_http@0.2.0.wasm` becomes
/// `wac:dummy-wasi-http-v0-2-0`.
fn naming(rel: &str, idx: usize) -> (String, String, String) {
    let parts: Vec<&str> = rel.split('/').collect();
    let origin = parts.get(1).copied().unwrap_or("corpus");
    let file = parts.last().copied().unwrap_or(rel);
    let stem = file.strip_suffix(".wasm").unwrap_or(file);
    let package = format!("{}:{}", kebab(origin), kebab(stem));
    // Same length for every tag, so no tag is a prefix of another (search matches
    // prefixes): searching the tag must find exactly this package.
    let tag = format!("corpustag{idx:03}x");
    let description = format!("Fixture {stem} from the {origin} corpus, marked {tag}.");
    (package, description, tag)
}
