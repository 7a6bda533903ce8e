use super::*;

fn entry(path: &str, bytes: &[u8]) -> AssetEntry {
    AssetEntry::of(path, bytes, false)
}

/// A tree with the given entries in the given order, unchecked (as a hostile peer
/// would encode it).
fn raw(entries: Vec<AssetEntry>) -> AssetTree {
    AssetTree {
        format: ASSETS_FORMAT,
        entries,
    }
}

#[test]
fn normalized_relative_paths_pass() {
    for p in [
        "index.html",
        "css/site.css",
        "a/b/c/d.txt",
        ".hidden",
        "dir/..dots",
        "ünï/cödé",
    ] {
        assert_eq!(check_path(p), Ok(()), "{p}");
    }
}

#[test]
fn each_escaping_or_ambiguous_path_has_its_rejection() {
    type Refusal = fn(String) -> AssetError;
    let cases: [(&str, Refusal); 10] = [
        ("/etc/passwd", AssetError::Absolute),
        ("../x", AssetError::ParentDir),
        ("a/../../x", AssetError::ParentDir),
        ("a/..", AssetError::ParentDir),
        ("./a", AssetError::CurrentDir),
        ("a//b", AssetError::EmptyComponent),
        ("a/", AssetError::EmptyComponent),
        ("a\\..\\x", AssetError::Backslash),
        ("C:/x", AssetError::Colon),
        ("a\0b", AssetError::ControlChar),
    ];
    for (p, want) in cases {
        assert_eq!(check_path(p), Err(want(p.to_string())), "{p:?}");
    }
    assert_eq!(check_path(""), Err(AssetError::EmptyPath));
    assert_eq!(
        check_path("a\nb"),
        Err(AssetError::ControlChar("a\nb".into()))
    );
    let long = "x".repeat(MAX_ASSET_NAME_BYTES + 1);
    assert_eq!(check_path(&long), Err(AssetError::TooLong(long.clone())));
    let deep = vec!["abc"; MAX_ASSET_PATH_BYTES / 4 + 1].join("/");
    assert_eq!(check_path(&deep), Err(AssetError::TooLong(deep.clone())));
}

#[test]
fn new_sorts_and_round_trips() {
    let big = vec![7u8; (chunk::CHUNK_SIZE as usize) * 2 + 3];
    let tree = AssetTree::new(vec![
        entry("z.txt", b"z"),
        AssetEntry::of("bin/run.sh", b"#!/bin/sh\n", true),
        entry("empty", b""),
        entry("a/b/big.bin", &big),
    ])
    .expect("a valid tree");
    let paths: Vec<&str> = tree.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a/b/big.bin", "bin/run.sh", "empty", "z.txt"]);
    assert_eq!(tree.files(), 4);
    assert_eq!(tree.bytes(), big.len() as u64 + 1 + 10);
    let bytes = tree.encode();
    let back = AssetTree::decode(&bytes).expect("decodes");
    assert_eq!(back, tree);
    assert_eq!(back.encode(), bytes, "encoding is deterministic");
    assert!(back.entries[1].executable);
    assert_eq!(back.entries[2].content, ContentId::of(b""));
}

#[test]
fn decode_refuses_a_hostile_tree_whatever_its_encoder_did() {
    for bad in ["../x", "/etc/x", "a/../../x", "a\\b"] {
        let bytes = raw(vec![entry(bad, b"owned")]).encode();
        let err = AssetTree::decode(&bytes).expect_err(bad);
        assert!(
            err.to_string().contains(bad),
            "message names the path: {err}"
        );
    }
    assert!(matches!(
        AssetTree::decode(b"not cbor"),
        Err(AssetError::Decode(_))
    ));
    let mut t = raw(vec![entry("a", b"1")]);
    t.format = ASSETS_FORMAT + 1;
    assert_eq!(
        AssetTree::decode(&t.encode()),
        Err(AssetError::Format(ASSETS_FORMAT + 1))
    );
    let huge = vec![0u8; MAX_TREE_BYTES as usize + 1];
    assert!(matches!(
        AssetTree::decode(&huge),
        Err(AssetError::TreeTooLarge(_))
    ));
}

#[test]
fn order_duplicates_and_overlaps_are_refused() {
    assert_eq!(
        raw(vec![entry("b", b"1"), entry("a", b"2")]).check(),
        Err(AssetError::Unsorted("a".into(), "b".into()))
    );
    assert_eq!(
        AssetTree::new(vec![entry("a", b"1"), entry("a", b"2")]),
        Err(AssetError::Duplicate("a".into()))
    );
    assert_eq!(
        AssetTree::new(vec![entry("a", b"1"), entry("a/b", b"2")]),
        Err(AssetError::FileIsDirectory("a".into(), "a/b".into()))
    );
    // `a-b` sorts between `a` and `a/c`: the overlap is still found.
    assert_eq!(
        AssetTree::new(vec![
            entry("a", b"1"),
            entry("a-b", b"2"),
            entry("a/c", b"3")
        ]),
        Err(AssetError::FileIsDirectory("a".into(), "a/c".into()))
    );
    assert_eq!(
        AssetTree::new(vec![entry("README", b"1"), entry("readme", b"2")]),
        Err(AssetError::CaseClash("README".into(), "readme".into()))
    );
    assert_eq!(
        AssetTree::new(vec![entry("Dir/a", b"1"), entry("dir/b", b"2")]),
        Err(AssetError::CaseClash("Dir".into(), "dir".into()))
    );
}

#[test]
fn bounds_and_digests_are_enforced() {
    let many: Vec<AssetEntry> = (0..=MAX_ASSET_FILES)
        .map(|i| entry(&format!("f{i:05}"), b""))
        .collect();
    assert_eq!(
        AssetTree::new(many),
        Err(AssetError::TooManyFiles(MAX_ASSET_FILES + 1))
    );
    let mut lying = entry("a", b"hello");
    lying.size = u64::from(chunk::CHUNK_SIZE) + 1;
    assert_eq!(
        AssetTree::new(vec![lying]),
        Err(AssetError::BadChunks("a".into()))
    );
    let mut wrong_id = entry("a", b"hello");
    wrong_id.content = ContentId::of(b"other");
    assert_eq!(
        AssetTree::new(vec![wrong_id]),
        Err(AssetError::BadChunks("a".into()))
    );
    let mut not_empty = entry("a", b"");
    not_empty.content = ContentId::of(b"x");
    assert_eq!(
        AssetTree::new(vec![not_empty]),
        Err(AssetError::BadChunks("a".into()))
    );
    let mut huge = entry("a", b"");
    huge.size = MAX_ASSET_FILE_BYTES + 1;
    assert_eq!(
        AssetTree::new(vec![huge]),
        Err(AssetError::TooLarge(MAX_ASSET_FILE_BYTES + 1))
    );
}

#[test]
fn the_signed_counts_must_match() {
    let tree = AssetTree::new(vec![entry("a", b"12"), entry("b", b"345")]).expect("valid");
    let tree_blob = tree.encode();
    let r = |files, bytes| AssetsRef {
        tree: crate::record::Attachment {
            content: ContentId::of(&tree_blob),
            size: tree_blob.len() as u64,
            chunks: ByteBuf::from(chunk::digests(&tree_blob, chunk::CHUNK_SIZE)),
        },
        files,
        bytes,
    };
    assert_eq!(tree.check_against(&r(2, 5)), Ok(()));
    assert!(matches!(
        tree.check_against(&r(3, 5)),
        Err(AssetError::Summary { want_files: 3, .. })
    ));
    assert!(matches!(
        tree.check_against(&r(2, 4)),
        Err(AssetError::Summary { want_bytes: 4, .. })
    ));
}
