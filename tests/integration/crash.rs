//! Crashes and outages during downloads (no corpus needed).
//!
//! * A node SIGKILLed in the middle of a 256 MiB download must never expose a partial
//!   blob as complete, must keep its partial file, and, once restarted, must finish
//!   the download by itself (no client asking) from that partial file.
//! * A client fetch whose only provider is offline must fail with exit 1 and a clear
//!   message once the node's stall timeout (60 s) expires, instead of hanging.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::integration::support::{
    Net, Node, blob_files, cid_of, sha256_file, sha256_hex, small_component, stderr_text,
    wait_until, with_custom_section,
};

/// Size of the padding that makes the crash test's component large.
const BIG_PAYLOAD: usize = 256 << 20;
/// Deadline for moving 256 MiB between two local nodes, whatever the machine.
const BIG_TRANSFER: Duration = Duration::from_secs(600);

#[test]
fn sigkill_mid_fetch_keeps_partial_and_resumes_after_restart() {
    let net = Net::new();
    let file = net.path("big.wasm");
    let (cid, sha) = {
        let big = with_custom_section(small_component("big"), BIG_PAYLOAD, 0x5eed_f00d);
        fs::write(&file, &big).expect("writing the big component");
        (cid_of(&big), sha256_hex(&big))
    };

    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "crash"]);
    let v = a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        "crash:big",
        "--version",
        "1.0.0",
    ]);
    assert_eq!(v["cid"], cid.as_str(), "publish: cid of the big component");
    let total = v["size"].as_u64().expect("size");
    wait_until(Duration::from_secs(120), "C to learn crash:big", || {
        c.ferry(&["info", "crash:big"]).status.success()
    });

    // A client on C starts the download; we watch it through C's progress endpoint.
    let out = net.path("out.wasm");
    let client_log = fs::File::create(net.path("client.log")).expect("client log");
    let mut client = c
        .ferry_cmd(&["fetch", "crash:big@1.0.0", "-o", &out.display().to_string()])
        .stdout(Stdio::null())
        .stderr(client_log)
        .spawn()
        .expect("spawning ferry fetch");
    let progress = format!("/v1/progress/{cid}");
    let mut mid = None;
    wait_until(
        BIG_TRANSFER,
        "C's download to be under way (0 < done < total)",
        || {
            let (status, p) = c.http_get(&progress);
            assert!(
                !(status == 200 && p["complete"] == true),
                "the download finished before the test could interrupt it: {p}"
            );
            let done = p["done"].as_u64().unwrap_or(0);
            if status == 200 && done > 0 && done < total {
                mid = Some(done);
                true
            } else {
                false
            }
        },
    );
    // Freeze the only provider so the download cannot complete, then crash C.
    a.signal("STOP");
    let (_, at_stop) = c.http_get(&progress);
    c.kill();
    let _ = client.kill();
    let _ = client.wait();
    let blob = c.dir.join("blobs").join(&cid);
    let partial = c.dir.join("blobs").join("partial").join(&cid);
    assert!(
        !blob.exists(),
        "a SIGKILLed download must not leave a complete-looking blob"
    );
    assert!(
        partial.is_file(),
        "the partial download must survive SIGKILL at {}",
        partial.display()
    );
    assert!(!out.exists(), "the client must not have written its output");
    let partial_len = fs::metadata(&partial).expect("partial").len();
    a.signal("CONT");

    // Restart C: it resumes alone, from what the partial file holds.
    let restarted = Instant::now();
    c.start(&[a.tcp_addr()]);
    let (first_status, first) = c.http_get(&progress);
    wait_until(
        BIG_TRANSFER,
        "C to finish the interrupted download by itself",
        || blob.is_file(),
    );
    let resumed_in = restarted.elapsed();
    assert!(
        !partial.exists(),
        "the partial file is gone once the blob is complete"
    );
    println!(
        "crash: progress seen {} of {total} bytes; {at_stop} when A was frozen; partial file {partial_len} bytes after SIGKILL; first progress after restart: HTTP {first_status} {first}; resumed download completed {} ms after restart",
        mid.unwrap_or(0),
        resumed_in.as_millis()
    );
    if first_status == 200 && first["complete"] == false {
        let done = first["done"].as_u64().unwrap_or(0);
        assert!(
            done > 0,
            "the restarted download started from zero although {partial_len} bytes were on disk: {first}"
        );
    }
    assert!(
        c.log_tail(10_000)
            .contains("resuming download of crash:big@1.0.0"),
        "C's log should show it resumed the download on start"
    );

    let out2 = net.path("out2.wasm");
    let v = c.ferry_json(&["fetch", &cid, "-o", &out2.display().to_string()]);
    assert_eq!(v["size"], total);
    assert_eq!(
        sha256_file(&out2),
        sha,
        "the resumed download's bytes differ from the published file"
    );
}

#[test]
fn fetch_fails_with_a_clear_message_when_the_provider_is_offline() {
    let net = Net::new();
    let mut a = Node::init_new_network(net.path("a"));
    a.start(&[]);
    let mut c = Node::join(net.path("c"), &a.network);
    c.start(&[a.tcp_addr()]);
    a.ferry_json(&["namespace", "define", "offline"]);
    let bytes = small_component("offline");
    let file = net.path("offline.wasm");
    fs::write(&file, &bytes).expect("writing the component");
    a.ferry_json(&[
        "publish",
        &file.display().to_string(),
        "--package",
        "offline:gone",
        "--version",
        "1.0.0",
    ]);
    wait_until(Duration::from_secs(120), "C to learn offline:gone", || {
        c.ferry(&["info", "offline:gone"]).status.success()
    });

    // The only node holding the blob disappears.
    a.kill();
    wait_until(Duration::from_secs(120), "C to notice A is gone", || {
        c.ferry_json(&["node", "status"])["peers"].as_u64() == Some(0)
    });
    let start = Instant::now();
    let out = c.ferry(&[
        "fetch",
        "offline:gone",
        "-o",
        &net.path("never.wasm").display().to_string(),
    ]);
    let err = stderr_text(&out);
    println!(
        "offline fetch failed after {} s: {err}",
        start.elapsed().as_secs()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "fetch with no provider must exit 1; stderr: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one stderr line: {err}");
    assert!(
        err.contains("no peer provides") && err.contains(&cid_of(&bytes)),
        "the message names the missing content: {err}"
    );
    assert!(
        !net.path("never.wasm").exists(),
        "no output file on failure"
    );
    assert!(
        !blob_files(&c.dir)
            .iter()
            .any(|f| !f.starts_with("partial/")),
        "no complete blob on C: {:?}",
        blob_files(&c.dir)
    );
    let cid = cid_of(&bytes);
    let (status, p) = c.http_get(&format!("/v1/progress/{cid}"));
    println!("offline: after the failed fetch, C's progress endpoint answers HTTP {status} {p}");

    // When the provider comes back (on new ports, so it dials C), a new fetch works.
    a.start(&[c.tcp_addr()]);
    let again = net.path("again.wasm");
    let v = c.ferry_json(&["fetch", &cid, "-o", &again.display().to_string()]);
    assert_eq!(v["cid"], cid.as_str());
    assert_eq!(
        sha256_file(&again),
        sha256_hex(&bytes),
        "bytes fetched once the provider is back"
    );
}
