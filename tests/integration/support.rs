//! Test harness: real `ferry` daemons in temporary data directories on 127.0.0.1.
//!
//! Every node is a child process (`ferry node start`) whose stderr goes to
//! `<data-dir>.log`; when a test panics, the last lines of each node's log are printed
//! so a failure can be diagnosed from the test output alone. Dropping a [`Node`]
//! SIGKILLs its daemon, so no process outlives its test. Nothing here relies on
//! timing: every wait polls a condition until a generous deadline.
//!
//! Set `FERRY_TEST_KEEP=1` to keep the temporary directories (and the full logs).

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

/// Generous deadline for anything a node should do "soon" (start, sync, small fetch).
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Longest any single CLI command may run (a fetch waits at most for the node's 60 s
/// stall timeout after the last progress).
pub const CLI_DEADLINE: Duration = Duration::from_secs(300);

/// The `ferry` binary cargo built for these tests.
pub fn ferry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    sha256_hex(&bytes)
}

/// The content id Ferry gives `bytes` (computed here, independently of any node).
pub fn cid_of(bytes: &[u8]) -> String {
    ferry_protocol::ContentId::of(bytes).to_string()
}

/// A temporary directory holding the data directories of one test's nodes.
pub struct Net {
    dir: tempfile::TempDir,
}

impl Net {
    /// A fresh temporary directory.
    pub fn new() -> Self {
        let mut dir = tempfile::Builder::new()
            .prefix("ferry-it-")
            .tempdir()
            .expect("creating a temp dir");
        if std::env::var_os("FERRY_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping test files in {}", dir.path().display());
        }
        Self { dir }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// One Ferry node: a data directory and, once started, its daemon.
pub struct Node {
    /// The data directory.
    pub dir: PathBuf,
    /// The network id this node was initialized with.
    pub network: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    fn init(dir: PathBuf, args: &[&str]) -> Self {
        let log = dir.with_extension("log");
        let mut node = Self {
            dir,
            network: String::new(),
            child: None,
            log,
        };
        let mut full = vec!["init"];
        full.extend_from_slice(args);
        let v = node.ferry_json(&full);
        node.network = v["network"]
            .as_str()
            .expect("init prints the network")
            .to_string();
        node
    }

    /// `ferry init --new-network` in `dir`: this node's key operates the new network.
    pub fn init_new_network(dir: PathBuf) -> Self {
        Self::init(dir, &["--new-network"])
    }

    /// `ferry init --network <id>` in `dir`.
    pub fn join(dir: PathBuf, network: &str) -> Self {
        let node = Self::init(dir, &["--network", network]);
        assert_eq!(node.network, network, "init --network echoes the network");
        node
    }

    /// Spawns `ferry node start` (bootstrapping from `bootstrap`) and waits until it
    /// listens on TCP and its API answers `ferry node status`.
    pub fn start(&mut self, bootstrap: &[String]) {
        self.start_with(bootstrap, &[]);
    }

    /// [`Self::start`] with extra `ferry node start` arguments (e.g. `--disk-budget`).
    pub fn start_with(&mut self, bootstrap: &[String], extra: &[&str]) {
        assert!(
            self.child.is_none(),
            "{} is already running",
            self.dir.display()
        );
        // A SIGKILLed node leaves a stale node.json behind; never read that one.
        let _ = fs::remove_file(self.dir.join("node.json"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the node log");
        let mut cmd = Command::new(ferry_bin());
        cmd.arg("--data-dir").arg(&self.dir).args(["node", "start"]);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        cmd.args(extra);
        cmd.env("FERRY_LOG", "info,libp2p=warn")
            .env_remove("FERRY_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("spawning ferry node start");
        let pid = child.id();
        self.child = Some(child);
        wait_until(DEADLINE, "node.json with a /tcp/ address", || {
            self.assert_alive();
            self.node_json().is_some_and(|v| {
                v["pid"].as_u64() == Some(u64::from(pid))
                    && v["addrs"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|x| x.as_str().is_some_and(|s| s.contains("/tcp/")))
                    })
            })
        });
        wait_until(DEADLINE, "the API to answer `ferry node status`", || {
            self.assert_alive();
            self.ferry(&["node", "status"]).status.success()
        });
    }

    fn assert_alive(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            self.child = None;
            panic!(
                "the daemon of {} exited early ({status}); log:\n{}",
                self.dir.display(),
                self.log_tail(40)
            );
        }
    }

    /// Parsed `node.json`, if present and complete.
    pub fn node_json(&self) -> Option<Value> {
        let bytes = fs::read(self.dir.join("node.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The node's full TCP multiaddr (ending in /p2p/<peer id>), for `--bootstrap`.
    pub fn tcp_addr(&self) -> String {
        let v = self.node_json().expect("node.json of a running node");
        v["addrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .find(|a| a.contains("/tcp/"))
            .expect("a /tcp/ address in node.json")
            .to_string()
    }

    /// Base URL of the node's HTTP API.
    pub fn api(&self) -> String {
        let v = self.node_json().expect("node.json of a running node");
        v["api"].as_str().expect("api in node.json").to_string()
    }

    /// Process id of the running daemon.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running daemon").id()
    }

    /// Runs `ferry --data-dir <dir> ARGS...` and returns its output. A command still
    /// running after [`CLI_DEADLINE`] is killed and fails the test (a hung client must
    /// not hang the suite).
    pub fn ferry(&self, args: &[&str]) -> Output {
        let mut cmd = self.ferry_cmd(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running ferry");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let out_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stdout.read_to_end(&mut b);
            b
        });
        let err_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stderr.read_to_end(&mut b);
            b
        });
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for ferry") {
                break s;
            }
            if start.elapsed() > CLI_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                let err = err_reader.join().unwrap_or_default();
                panic!(
                    "`ferry {}` on {} did not finish within {CLI_DEADLINE:?}; stderr: {}",
                    args.join(" "),
                    self.dir.display(),
                    String::from_utf8_lossy(&err)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        }
    }

    /// The command `ferry --data-dir <dir> ARGS...`, to spawn in the background.
    pub fn ferry_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ferry_bin());
        cmd.arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("FERRY_DATA_DIR")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `ferry --json ARGS...`, asserts exit 0 and returns the parsed output.
    pub fn ferry_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.ferry(&full);
        assert!(
            out.status.success(),
            "`ferry {}` on {} failed ({}):\nstderr: {}\nstdout: {}",
            full.join(" "),
            self.dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`ferry {}` printed invalid JSON ({e}): {}",
                full.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Number of packages the node knows (`ferry node status`), or None if it did not answer.
    pub fn package_count(&self) -> Option<u64> {
        let out = self.ferry(&["--json", "node", "status"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice::<Value>(&out.stdout).ok()?["packages"].as_u64()
    }

    /// GET `path` on the node's API: (status code, parsed JSON body or Null).
    pub fn http_get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.api());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client");
            let resp = client
                .get(&url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = resp.status().as_u16();
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            (status, body)
        })
    }

    /// Sends a signal (`"STOP"`, `"CONT"`, `"TERM"`, ...) to the daemon with kill(1).
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    /// SIGKILLs the daemon and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.stop_with("TERM")
    }

    /// Sends `sig` (TERM or INT) and waits for the daemon to exit; returns whether it
    /// exited 0.
    pub fn stop_with(&mut self, sig: &str) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        send_signal(c.id(), sig);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if start.elapsed() > DEADLINE {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's whole log so far (every start appends to it).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The node's libp2p peer id (from `node.json`).
    pub fn peer_id(&self) -> String {
        let v = self.node_json().expect("node.json of a running node");
        v["peer_id"]
            .as_str()
            .expect("peer_id in node.json")
            .to_string()
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // A STOPped process still dies on SIGKILL.
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- last log lines of {} ----\n{}\n----",
                self.dir.display(),
                self.log_tail(30)
            );
        }
    }
}

/// Sends `sig` to `pid` with kill(1) (no libc in the test's dependencies).
pub fn send_signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Regular files directly in `<data-dir>/blobs`, `blobs/partial` and `blobs/tmp`.
pub fn blob_files(data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["", "partial", "tmp"] {
        let d = data_dir.join("blobs").join(sub);
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_file() {
                let name = e.file_name().to_string_lossy().into_owned();
                out.push(if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                });
            }
        }
    }
    out.sort();
    out
}

/// POST `body` to `path` on the node's API with its token: (status code, parsed JSON
/// body, or the text as a JSON string).
pub fn http_post(node: &Node, path: &str, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}{path}", node.api());
    let token = std::fs::read_to_string(node.dir.join("api.token")).expect("the API token");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
            .post(&url)
            .bearer_auth(token.trim())
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    })
}

/// Exit code and one-line stderr check shared by "refused" assertions.
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_string()
}

/// A real, valid component built in-process from a WIT world exporting one function
/// named `f-<tag>`, so different tags give different bytes.
pub fn small_component(tag: &str) -> Vec<u8> {
    let wit =
        format!("package test:fixture;\nworld w {{\n  export f-{tag}: func(a: u32) -> u32;\n}}\n");
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("fixture.wit", &wit)
        .expect("parsing the WIT");
    let world = resolve.select_world(&[pkg], Some("w")).expect("the world");
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embedding component metadata");
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .expect("the dummy module")
        .encode()
        .expect("encoding the component")
}

fn leb128_u32(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `component` with a custom section `name` holding `payload` appended, as
/// `wasm-tools metadata add` or a toolchain would write it (e.g. `licenses`).
pub fn with_section(mut component: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb128_u32(name.len() as u32, &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    component.push(0x00);
    leb128_u32(
        u32::try_from(body.len()).expect("a small section"),
        &mut component,
    );
    component.extend_from_slice(&body);
    component
}

/// `component` with a custom section of `payload_len` pseudo-random bytes appended
/// (still a valid component). Every 1 MiB chunk differs, so a partial download can
/// never be mistaken for a complete one by chance.
pub fn with_custom_section(mut component: Vec<u8>, payload_len: usize, seed: u64) -> Vec<u8> {
    let name = b"ferry-test-padding";
    let mut header = Vec::new();
    leb128_u32(name.len() as u32, &mut header);
    header.extend_from_slice(name);
    let size = u32::try_from(header.len() + payload_len).expect("section under 4 GiB");
    component.push(0x00);
    leb128_u32(size, &mut component);
    component.extend_from_slice(&header);
    component.reserve(payload_len);
    // xorshift64*: fast enough even unoptimized, and no two chunks alike.
    let mut x = seed | 1;
    let mut left = payload_len;
    while left > 0 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = left.min(8);
        component.extend_from_slice(&word[..n]);
        left -= n;
    }
    component
}
