//! The S3 store under faults, against a real Garage through a proxy that
//! injects them (`proxy.rs`): 503 replies, slow responses, and the server
//! stopped mid-sync, briefly or for good. What docs/s3.md promises: transient
//! faults are retried with backoff for 30 seconds per request, then the sync
//! fails with one clear error, at once for the rest of the run; what it
//! committed is whole, its manifest is whole, and the next run converges.

use std::process::Stdio;
use std::time::{Duration, Instant};

use poolsync::store::RETRY_BUDGET;

use super::proxy::{Mode, Proxy};
use super::{Garage, S3Pair, no_temporaries, object_tree, runtime, write_items};
use crate::common::tree;

/// A pair whose bucket is reached through a new proxy in front of Garage.
fn pair_through_proxy(g: &Garage, test: &str, settings: &str) -> (S3Pair, Proxy) {
    let proxy = Proxy::start(g.endpoint(false));
    let pair = S3Pair::through(g, test, false, &proxy.endpoint, settings);
    (pair, proxy)
}

/// Starts a sync in the background with every answer slowed by 20 ms, so
/// that a test can act while it runs.
fn start_slowed(pair: &S3Pair, proxy: &Proxy) -> std::process::Child {
    proxy.set(Mode::Slow(Duration::from_millis(20)));
    pair.sync_cmd()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Syncs and returns (exit status, items copied, stderr).
fn sync(pair: &S3Pair) -> (Option<i32>, Option<u64>, String) {
    let out = pair.sync_cmd().output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().parse().ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until the sync `child` has sent `n` more requests through `proxy`
/// than it had when the wait began; fails if the sync ended first.
fn wait_for_requests(proxy: &Proxy, child: &mut std::process::Child, n: u64) {
    let (from, started) = (proxy.requests(), Instant::now());
    while proxy.requests() < from + n {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended after {} requests, before {n}",
            proxy.requests() - from
        );
        assert!(started.elapsed() < Duration::from_mins(1));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks that the bucket's replica of A equals A's data, and that no
/// staging or journal key is left.
fn converged(g: &Garage, pair: &S3Pair, label: &str) {
    let rt = runtime();
    let client = g.client(false);
    assert!(
        rt.block_on(object_tree(&client, &pair.b_replica())) == tree(&pair.a_data()),
        "{label}: the replica did not converge"
    );
    no_temporaries(&rt, &client, pair, label);
}

#[test]
fn s3_503_replies_are_retried_and_the_sync_completes() {
    let Some(g) = Garage::get("s3_503_replies_are_retried_and_the_sync_completes") else {
        return;
    };
    let (pair, proxy) = pair_through_proxy(&g, "unavailable", "batch_max_items = 50");
    write_items(&pair.a_data(), 0, 300);
    // One connection in three answers its first request with 503: every one
    // of them is retried, and the sync completes as if nothing happened.
    proxy.set(Mode::Unavailable { one_in: 3 });
    let (status, copied, err) = sync(&pair);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(copied, Some(300));
    let (connections, unavailable) = proxy.counts();
    assert!(
        unavailable >= 3,
        "only {unavailable} of {connections} connections got a 503"
    );
    converged(&g, &pair, "after 503s");
}

#[test]
fn s3_slow_responses_are_waited_for() {
    let Some(g) = Garage::get("s3_slow_responses_are_waited_for") else {
        return;
    };
    let (pair, proxy) = pair_through_proxy(&g, "slow", "batch_max_items = 50");
    write_items(&pair.a_data(), 0, 150);
    // Every chunk the server sends waits 40 ms: far below the 60 s request
    // timeout, so nothing fails; it only takes longer.
    proxy.set(Mode::Slow(Duration::from_millis(40)));
    let started = Instant::now();
    let (status, copied, err) = sync(&pair);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(copied, Some(150));
    assert!(started.elapsed() > Duration::from_millis(400));
    converged(&g, &pair, "after slow responses");
}

#[test]
fn s3_server_stopped_briefly_mid_sync_is_ridden_out_by_the_retries() {
    let Some(g) = Garage::get("s3_server_stopped_briefly_mid_sync_is_ridden_out_by_the_retries")
    else {
        return;
    };
    let (pair, proxy) = pair_through_proxy(&g, "blip", "batch_max_items = 25");
    write_items(&pair.a_data(), 0, 600);
    let mut child = start_slowed(&pair, &proxy);
    wait_for_requests(&proxy, &mut child, 150);
    // Three seconds without a server (a restart), well inside the budget.
    proxy.stop_server();
    std::thread::sleep(Duration::from_secs(2));
    proxy.start_server();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "600");
    converged(&g, &pair, "after a blip");
}

#[test]
fn s3_server_stopped_mid_sync_fails_within_the_retry_budget_and_the_next_run_converges() {
    let Some(g) = Garage::get(
        "s3_server_stopped_mid_sync_fails_within_the_retry_budget_and_the_next_run_converges",
    ) else {
        return;
    };
    let (pair, proxy) = pair_through_proxy(&g, "stopped", "batch_max_items = 25");
    let rt = runtime();
    let client = g.client(false);
    write_items(&pair.a_data(), 0, 600);
    let (status, _, err) = sync(&pair);
    assert_eq!(status, Some(0), "{err}");
    let old = rt.block_on(object_tree(&client, &pair.b_replica()));
    write_items(&pair.a_data(), 1, 600);
    let new = tree(&pair.a_data());
    let mut child = start_slowed(&pair, &proxy);
    // A third of the way: some batches are in, more are on their way.
    wait_for_requests(&proxy, &mut child, 150);
    proxy.stop_server();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = stopped.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("the sync gave up {took:?} after the server stopped");
    // Retried for the documented budget (30 s), then given up: the rest of
    // the run (the other direction, the status records, the lock) fails at
    // once instead of paying the retries again. One error names the endpoint.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took >= RETRY_BUDGET / 2, "gave up after {took:?}: {err}");
    assert!(took <= RETRY_BUDGET * 2, "gave up after {took:?}: {err}");
    assert!(
        err.contains(&format!("at {}", proxy.endpoint))
            && err.contains("cannot reach the endpoint (is the server running"),
        "{err}"
    );
    // What it left: whole items, old or new.
    proxy.start_server();
    proxy.set(Mode::Pass);
    let left = rt.block_on(object_tree(&client, &pair.b_replica()));
    for (path, content) in &left {
        assert!(
            old.get(path) == Some(content) || new.get(path) == Some(content),
            "{path} is torn or foreign"
        );
    }
    // The next run reads a whole manifest (no damaged or rebuilt one), copies
    // at least what is still old and at most this round's changes, and
    // converges.
    let still_old = new.iter().filter(|(p, c)| left.get(*p) != Some(*c)).count() as u64;
    let changed = new.iter().filter(|(p, c)| old.get(*p) != Some(*c)).count() as u64;
    let (status, copied, err) = sync(&pair);
    assert_eq!(status, Some(0), "{err}");
    assert!(
        !err.contains("damaged") && !err.contains("rebuilt"),
        "{err}"
    );
    let copied = copied.unwrap();
    assert!(
        (still_old..=changed).contains(&copied),
        "copied {copied}; {still_old} were still old, {changed} changed"
    );
    converged(&g, &pair, "after the server came back");
}
