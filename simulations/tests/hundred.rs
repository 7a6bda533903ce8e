//! A hundred real nodes in one process, in a configuration small enough for CI: one
//! short clean burst, churn with restarts and late joiners, a partition that heals, and
//! adversaries forging throughout. Asserts outcomes, never timings.

use ferry_simulations::scenario::Config;

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_nodes_converge_after_churn_and_a_partition_and_accept_no_forgery() {
    let cfg = Config {
        nodes: 100,
        seed: 11,
        releases: 4,
        late_joiners: 4,
        churn: 0.05,
        partition: true,
        adversaries: 3,
        idle_s: 1,
        phase_timeout_s: 150,
        ..Config::default()
    };
    let report = match ferry_simulations::run(cfg, None).await {
        Ok(r) => r,
        Err(e) => panic!("the simulation could not run: {e}"),
    };
    let text = report.render();
    println!("{text}");
    assert!(report.converged, "not converged at the end:\n{text}");
    let p = report.partition.as_ref();
    assert!(
        p.is_some_and(|p| p.converged && p.sides[0] > 0 && p.sides[1] > 0),
        "the partition did not heal:\n{text}"
    );
    let churn = report.churn.as_ref();
    assert!(
        churn.is_some_and(|c| c.behind == 0 && c.stopped > 0 && c.late_joiners == 4),
        "restarted or late nodes did not catch up:\n{text}"
    );
    for b in &report.bursts {
        assert!(
            b.publish_errors.is_empty(),
            "{}: {:?}",
            b.name,
            b.publish_errors
        );
        assert_eq!(
            b.undelivered, 0,
            "{} left releases undelivered:\n{text}",
            b.name
        );
    }
    let m = &report.misbehaviour;
    assert!(
        m.gossiped > 0,
        "the adversaries never got a forgery out:\n{text}"
    );
    assert_eq!(m.accepted_anywhere, 0, "a forgery was accepted:\n{text}");
    assert_eq!(m.adversary_signed_records, 0, "{text}");
    assert!(
        m.rejected_by_honest > 0,
        "nobody rejected a forgery:\n{text}"
    );
    let i = &report.invariants;
    assert!(i.blobs_checked > 0);
    assert_eq!(i.bad_blobs, 0, "{text}");
    assert_eq!(i.violations, 0, "{:?}", i.violation_samples);
}
