//! `ferry new NAME --template rust|js|wit`: create a project folder.
//!
//! Every template writes `ferry.toml`, `wit/world.wit` (the package
//! `<ns>:<name>@0.1.0` with a world named after the package, exporting one
//! interface) and a README with the build and `ferry publish` commands; `rust` adds
//! a wit-bindgen crate (Cargo.toml with cargo-component metadata, src/lib.rs), `js`
//! a componentize-js setup (package.json, src/<name>.js; the engine behind `jco componentize`), `wit` nothing more.
//! The WIT is parsed with wit-parser before anything is written, and an existing
//! non-empty folder is refused.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ferry_protocol::{Namespace, PackageName};
use semver::Version;
use serde_json::json;

use crate::output::emit;
use crate::project::manifest;
use crate::project::write_atomic;
use crate::{Global, UsageError};

/// Which toolchain the project is for.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Rust with wit-bindgen (`cargo build --target wasm32-wasip2`, or cargo-component).
    Rust,
    /// JavaScript with componentize-js (what `jco componentize` runs).
    Js,
    /// A WIT package only.
    Wit,
}

/// The rules, shown by `--help`.
const HELP: &str = "Writes ferry.toml, wit/world.wit (package <ns>:<name>@0.1.0 with a world <name> exporting one interface), a README with the build\nand `ferry publish` commands, and: rust: Cargo.toml (wit-bindgen, cargo-component metadata) and src/lib.rs; js: package.json\n(componentize-js, the engine of jco componentize) and src/<name>.js; wit: nothing more. Refuses a non-empty folder and a name that is not lowercase kebab-case.";

/// Arguments of `ferry new`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = HELP)]
pub struct Args {
    /// The package: `ns:name`, or `name` (then --namespace applies). Lowercase
    /// kebab-case labels, e.g. acme:image-resize.
    name: String,
    /// The toolchain.
    #[arg(long, value_enum)]
    template: Template,
    /// Namespace when NAME has none.
    #[arg(long, default_value = "local")]
    namespace: Namespace,
    /// The folder to create (it may exist if empty). Default: ./<name>.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
}

const WORLD: &str = include_str!("new/world.wit.tmpl");
const RUST_CARGO: &str = include_str!("new/rust-Cargo.toml.tmpl");
const RUST_LIB: &str = include_str!("new/rust-lib.rs.tmpl");
const RUST_README: &str = include_str!("new/rust-README.md.tmpl");
const JS_PACKAGE: &str = include_str!("new/js-package.json.tmpl");
const JS_APP: &str = include_str!("new/js-app.js.tmpl");
const JS_README: &str = include_str!("new/js-README.md.tmpl");
const WIT_README: &str = include_str!("new/wit-README.md.tmpl");

/// Rust keywords, which wit-bindgen suffixes with `_` in module names.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield",
];

/// A WIT kebab name as wit-bindgen names its Rust module.
fn rust_ident(kebab: &str) -> String {
    let snake = kebab.replace('-', "_");
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        format!("{snake}_")
    } else {
        snake
    }
}

fn package_name(a: &Args) -> Result<PackageName> {
    let full = if a.name.contains(':') {
        a.name.clone()
    } else {
        format!("{}:{}", a.namespace, a.name)
    };
    full.parse::<PackageName>()
        .map_err(|e| UsageError(format!("`{}` cannot be a project name: {e}", a.name)).into())
}

/// The world file, with the world name escaped (`%name`) if it is a WIT keyword;
/// checked with wit-parser either way.
fn world_file(subst: &dyn Fn(&str, &str) -> String, world: &str) -> Result<(String, String)> {
    let mut last = None;
    for spelled in [world.to_string(), format!("%{world}")] {
        let text = subst(WORLD, &spelled);
        let mut resolve = wit_parser::Resolve::default();
        match resolve.push_str("world.wit", &text) {
            Ok(_) => return Ok((text, spelled)),
            Err(e) => last = Some(e),
        }
    }
    Err(UsageError(format!(
        "`{world}` cannot be a project name: its WIT does not parse ({})",
        last.map(|e| format!("{e:#}")).unwrap_or_default()
    ))
    .into())
}

/// Runs `ferry new`.
pub async fn run(g: &Global, a: Args) -> Result<()> {
    let name = package_name(&a)?;
    let dir = a.path.clone().unwrap_or_else(|| PathBuf::from(name.name()));
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} already exists and is not empty: choose another folder with --path",
                dir.display()
            );
        }
    }
    let version = Version::new(0, 1, 0);
    let world = name.name().to_string();
    let lib = name.name().replace('-', "_");
    let vars = |world_spelled: &str| -> Vec<(&'static str, String)> {
        vec![
            ("{{package}}", name.to_string()),
            ("{{version}}", version.to_string()),
            ("{{ns}}", name.namespace().to_string()),
            ("{{name}}", name.name().to_string()),
            ("{{world_plain}}", world.clone()),
            ("{{world}}", world_spelled.to_string()),
            ("{{rust_ns}}", rust_ident(name.namespace().as_str())),
            ("{{rust_name}}", rust_ident(name.name())),
            ("{{lib}}", lib.clone()),
        ]
    };
    let subst = |template: &str, world_spelled: &str| -> String {
        vars(world_spelled)
            .iter()
            .fold(template.to_string(), |t, (k, v)| t.replace(k, v))
    };
    let (world_text, spelled) = world_file(&subst, &world)?;
    let fill = |t: &str| subst(t, &spelled);

    let mut files: Vec<(PathBuf, String)> = vec![
        (
            PathBuf::from("ferry.toml"),
            manifest::template(&name, &version),
        ),
        (PathBuf::from("wit/world.wit"), world_text),
    ];
    match a.template {
        Template::Rust => {
            files.push(("Cargo.toml".into(), fill(RUST_CARGO)));
            files.push(("src/lib.rs".into(), fill(RUST_LIB)));
            files.push(("README.md".into(), fill(RUST_README)));
            files.push((".gitignore".into(), "/target\n/deps\n".into()));
        }
        Template::Js => {
            files.push(("package.json".into(), fill(JS_PACKAGE)));
            files.push((format!("src/{}.js", name.name()).into(), fill(JS_APP)));
            files.push(("README.md".into(), fill(JS_README)));
            files.push((
                ".gitignore".into(),
                "/node_modules\n/deps\n/*.wasm\n".into(),
            ));
        }
        Template::Wit => {
            files.push(("README.md".into(), fill(WIT_README)));
            files.push((".gitignore".into(), "/deps\n".into()));
        }
    }
    for (rel, text) in &files {
        let path = dir.join(rel);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let template = format!("{:?}", a.template).to_lowercase();
    let v = json!({
        "dir": dir.display().to_string(),
        "package": name.to_string(),
        "version": version.to_string(),
        "world": world,
        "template": template,
        "files": files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
    });
    emit(g.json, &v, |_| {
        format!(
            "created {} ({template} project for {name}@{version}); see {}/README.md to build and publish it",
            dir.display(),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_follow_wit_bindgen() {
        assert_eq!(rust_ident("image-resize"), "image_resize");
        assert_eq!(rust_ident("type"), "type_");
    }

    #[test]
    fn keyword_worlds_are_escaped() {
        let subst = |t: &str, w: &str| {
            t.replace("{{package}}", "acme:hello")
                .replace("{{version}}", "0.1.0")
                .replace("{{world}}", w)
        };
        let (text, spelled) = world_file(&subst, "world").expect("an escaped world");
        assert_eq!(spelled, "%world");
        assert!(text.contains("world %world {"), "{text}");
        let (_, plain) = world_file(&subst, "hello").expect("a plain world");
        assert_eq!(plain, "hello");
        let keyword_package = |t: &str, w: &str| {
            t.replace("{{package}}", "acme:interface")
                .replace("{{version}}", "0.1.0")
                .replace("{{world}}", w)
        };
        let e = world_file(&keyword_package, "interface").expect_err("refused");
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
    }
}
