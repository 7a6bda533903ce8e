//! Search latency over a large index: `cargo bench -p ferry-node --bench search`.
//!
//! Fills a real redb index (through the same validated ingest that gossip and sync
//! use) with `FERRY_BENCH_PACKAGES` synthetic packages (default 100,000), each with one
//! signed release whose description and component summary are drawn from small
//! vocabularies, then times name, name-prefix, description and interface queries and
//! prints p50/p99 per kind, the ingest rate and the index file's size on disk.
//!
//! As a baseline measured in the same run, each kind is also timed on a 1,000-package
//! index built the same way, so the figures read as "how much slower at 100x the size".

use std::time::{Duration, Instant};

use ferry_node::index::{Index, InterfaceQuery, SearchQuery};
use ferry_protocol::component::{PackageKind, Summary};
use ferry_protocol::record::{Body, OPERATOR_LOG, RECORD_FORMAT, Record, Release};
use ferry_protocol::{ContentId, Keypair, NetworkId, RecordId, SignedRecord, chunk};
use serde_bytes::ByteBuf;

const NOW: u64 = 1_800_000_000_000;
const NAMESPACES: usize = 100;
const QUERIES: usize = 400;
const WORDS: [&str; 24] = [
    "image",
    "resize",
    "http",
    "router",
    "json",
    "parser",
    "cache",
    "queue",
    "crypto",
    "hash",
    "logger",
    "metrics",
    "auth",
    "token",
    "sql",
    "kv",
    "blob",
    "stream",
    "codec",
    "zip",
    "markdown",
    "template",
    "scheduler",
    "geo",
];
const INTERFACES: [&str; 8] = [
    "wasi:http/incoming-handler@0.2.0",
    "wasi:http/outgoing-handler@0.2.0",
    "wasi:cli/run@0.2.0",
    "wasi:keyvalue/store@0.2.0",
    "wasi:messaging/handler@0.2.0",
    "acme:image/resize@1.0.0",
    "acme:json/parse@1.1.0",
    "wasi:filesystem/types@0.2.0",
];

/// A tiny deterministic generator (xorshift): one seed gives one index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

fn sign(
    key: &Keypair,
    net: Option<NetworkId>,
    log: &str,
    seq: u64,
    prev: Option<RecordId>,
    body: Body,
) -> SignedRecord {
    SignedRecord::sign(
        key,
        Record {
            format: RECORD_FORMAT,
            network: net,
            log: log.into(),
            seq,
            prev,
            time_ms: NOW,
            body,
        },
    )
}

fn package_name(i: usize) -> String {
    format!("ns{}:pkg-{}-n{}", i % NAMESPACES, WORDS[i % WORDS.len()], i)
}

/// Builds an index of `n` packages in `dir`; returns it and the ingest time.
fn build(dir: &std::path::Path, n: usize) -> (Index, Duration, std::path::PathBuf) {
    let op = Keypair::from_seed([3; 32]);
    let genesis = sign(
        &op,
        None,
        OPERATOR_LOG,
        0,
        None,
        Body::OperatorInit {
            operators: vec![op.public()],
            nonce: ByteBuf::from(vec![0; 16]),
        },
    );
    let net = genesis.id;
    let path = dir.join("index.redb");
    let index = Index::open(&path, net).expect("opening the index");
    let mut op_log = vec![genesis];
    for ns in 0..NAMESPACES {
        let prev = op_log.last().map(|r| r.id);
        op_log.push(sign(
            &op,
            Some(net),
            OPERATOR_LOG,
            op_log.len() as u64,
            prev,
            Body::DefineNamespace {
                namespace: format!("ns{ns}"),
                owners: vec![op.public()],
            },
        ));
    }
    index.ingest_batch(&op_log, NOW).expect("operator log");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    let mut batch = Vec::with_capacity(2_000);
    for i in 0..n {
        let name = package_name(i);
        let init = sign(
            &op,
            Some(net),
            &name,
            0,
            None,
            Body::PackageInit {
                kind: PackageKind::Component,
            },
        );
        let description = format!(
            "{} {} {} component number {i}",
            rng.pick(&WORDS),
            rng.pick(&WORDS),
            rng.pick(&WORDS)
        );
        let summary = Summary {
            exports: vec![rng.pick(&INTERFACES).to_string()],
            imports: vec![
                rng.pick(&INTERFACES).to_string(),
                rng.pick(&INTERFACES).to_string(),
            ],
            ..Summary::default()
        };
        let bytes = format!("synthetic blob {i}").into_bytes();
        let release = sign(
            &op,
            Some(net),
            &name,
            1,
            Some(init.id),
            Body::Release(Release {
                version: format!("1.{}.0", i % 7),
                kind: PackageKind::Component,
                content: ContentId::of(&bytes),
                size: bytes.len() as u64,
                chunk_size: chunk::CHUNK_SIZE,
                chunks: ByteBuf::from(chunk::digests(&bytes, chunk::CHUNK_SIZE)),
                description: Some(description),
                license: Some("Apache-2.0".into()),
                summary: Some(summary),
                attachments: Default::default(),
            }),
        );
        batch.push(init);
        batch.push(release);
        if batch.len() >= 2_000 {
            ingest(&index, &batch);
            batch.clear();
        }
    }
    ingest(&index, &batch);
    (index, start.elapsed(), path)
}

fn ingest(index: &Index, batch: &[SignedRecord]) {
    for r in index.ingest_batch(batch, NOW).expect("ingest") {
        if let Err(e) = r {
            panic!("synthetic record refused: {e}");
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Makes one query of a kind from the generator.
type MakeQuery<'a> = &'a dyn Fn(&mut Rng) -> SearchQuery;

/// Times `QUERIES` runs of each query kind; returns (kind, p50, p99, mean hits).
fn measure(index: &Index, n: usize) -> Vec<(&'static str, Duration, Duration, f64)> {
    let mut rng = Rng(42);
    let kinds: [(&str, MakeQuery); 5] = [
        ("exact name", &|r: &mut Rng| {
            text(package_name((r.next() % n as u64) as usize))
        }),
        ("name prefix", &|r: &mut Rng| {
            text(format!("pkg-{}", r.pick(&WORDS)))
        }),
        ("description", &|r: &mut Rng| {
            text(format!("{} {}", r.pick(&WORDS), r.pick(&WORDS)))
        }),
        ("implements", &|r: &mut Rng| SearchQuery {
            implements: Some(iface(r.pick(&INTERFACES))),
            limit: 20,
            ..SearchQuery::default()
        }),
        ("imports + version", &|r: &mut Rng| SearchQuery {
            imports: Some(iface(r.pick(&INTERFACES))),
            version: Some("^1.3".parse().expect("requirement")),
            limit: 20,
            ..SearchQuery::default()
        }),
    ];
    let mut out = Vec::new();
    for (kind, make) in kinds {
        let mut times = Vec::with_capacity(QUERIES);
        let mut hits = 0usize;
        for _ in 0..QUERIES {
            let q = make(&mut rng);
            let t = Instant::now();
            let res = index.find(&q).expect("search");
            times.push(t.elapsed());
            hits += res.len();
        }
        times.sort();
        out.push((
            kind,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            hits as f64 / QUERIES as f64,
        ));
    }
    out
}

fn text(t: String) -> SearchQuery {
    SearchQuery {
        text: Some(t),
        limit: 20,
        ..SearchQuery::default()
    }
}

fn iface(versioned: &str) -> InterfaceQuery {
    // `ns:pkg/iface@1.2.3` → query `ns:pkg/iface@^1` style: the name and a caret major.
    let (name, version) = versioned.split_once('@').expect("versioned interface");
    let major = version.split('.').next().unwrap_or("0");
    let minor = version.split('.').nth(1).unwrap_or("0");
    let req = if major == "0" {
        format!("0.{minor}")
    } else {
        major.to_string()
    };
    format!("{name}@{req}").parse().expect("interface query")
}

fn main() {
    let n: usize = std::env::var("FERRY_BENCH_PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let base_n = 1_000.min(n);
    let base_dir = tempfile::tempdir().expect("temp dir");
    let (base, _, _) = build(base_dir.path(), base_n);
    let baseline = measure(&base, base_n);

    let dir = tempfile::tempdir().expect("temp dir");
    let (index, took, path) = build(dir.path(), n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "index: {n} packages ({} signed records) ingested in {:.1} s ({:.0} records/s), {:.1} MiB on disk ({:.0} bytes per package)",
        2 * n,
        took.as_secs_f64(),
        (2 * n) as f64 / took.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0),
        size as f64 / n as f64
    );
    let header = format!("vs {base_n} packages (p50 ratio)");
    println!(
        "{:<18} {:>10} {:>10} {:>8}   {header}",
        "query", "p50", "p99", "hits"
    );
    for ((kind, p50, p99, hits), (_, b50, _, _)) in measure(&index, n).into_iter().zip(baseline) {
        println!(
            "{kind:<18} {:>8.2}ms {:>8.2}ms {hits:>8.1}   {:.1}x",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p50.as_secs_f64() / b50.as_secs_f64().max(1e-9)
        );
    }
}
