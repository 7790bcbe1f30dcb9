//! The sync issue's guarantees against Garage: kill -9 at any moment, two processes, a cluster node stopped.

use super::*;

/// One change to a pool's data: `b` says which pool (B is in the bucket).
#[derive(Debug, Clone)]
enum Op {
    Write {
        b: bool,
        path: String,
        content: Vec<u8>,
    },
    Delete {
        b: bool,
        pick: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = (
        prop::sample::select(vec!["a", "c d", "e#1"]),
        prop::sample::select(vec!["x", "y.json", "w 1"]),
    )
        .prop_map(|(d, f)| format!("{d}/{f}"));
    prop_oneof![
        3 => (any::<bool>(), path, prop::collection::vec(any::<u8>(), 0..48))
            .prop_map(|(b, path, content)| Op::Write { b, path, content }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(b, pick)| Op::Delete { b, pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn s3_replicas_equal_sources_after_every_round(
        rounds in prop::collection::vec(prop::collection::vec(op_strategy(), 0..10), 1..4),
        batch in 1u64..4,
    ) {
        let Some(g) = Garage::get("s3_replicas_equal_sources_after_every_round") else {
            return Ok(());
        };
        let pair = S3Pair::new(&g, "props", false, &format!("batch_max_items = {batch}"));
        let client = g.client(false);
        let rt = runtime();
        let engine = pair.engine();
        let b_data = pair.b_data();
        let b_replica = pair.b_replica();
        for ops in &rounds {
            for op in ops {
                match op {
                    Op::Write { b: false, path, content } => {
                        let f = pair.a_data().join(path);
                        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                        std::fs::write(f, content).unwrap();
                    }
                    Op::Write { b: true, path, content } => {
                        rt.block_on(client.put(&pair.b_data_key(path), PutPayload::from(content.clone()))).unwrap();
                    }
                    Op::Delete { b: false, pick } => {
                        let files: Vec<String> = tree(&pair.a_data()).into_keys().collect();
                        if !files.is_empty() {
                            std::fs::remove_file(pair.a_data().join(&files[pick % files.len()])).unwrap();
                        }
                    }
                    Op::Delete { b: true, pick } => {
                        let files: Vec<String> = rt.block_on(object_tree(&client, &b_data)).into_keys().collect();
                        if !files.is_empty() {
                            rt.block_on(client.delete(&pair.b_data_key(&files[pick % files.len()]))).unwrap();
                        }
                    }
                }
            }
            let before_a = (tree(&pair.a_data()), rt.block_on(object_tree(&client, &b_replica)));
            let before_b = (rt.block_on(object_tree(&client, &b_data)), tree(&pair.a_replica()));
            let report = rt.block_on(engine.sync_pair(&crate::common::pair(&engine, A), &pf_only())).unwrap();
            let after_a = (tree(&pair.a_data()), rt.block_on(object_tree(&client, &b_replica)));
            let after_b = (rt.block_on(object_tree(&client, &b_data)), tree(&pair.a_replica()));
            prop_assert_eq!(&after_a.0, &after_a.1, "A -> B (bucket)");
            prop_assert_eq!(&after_b.0, &after_b.1, "B (bucket) -> A");
            for (from, before) in [(A, &before_a), (B, &before_b)] {
                let m = report.modules.iter().find(|m| m.from.as_str() == from).unwrap();
                let copied = before.0.iter().filter(|(k, v)| before.1.get(*k) != Some(v)).count() as u64;
                let deleted = before.1.keys().filter(|k| !before.0.contains_key(*k)).count() as u64;
                prop_assert_eq!(m.items_copied, copied, "copied from {}", from);
                prop_assert_eq!(m.items_deleted, deleted, "deleted from {}", from);
            }
        }
    }
}

#[test]
fn s3_kill_9_at_any_moment_leaves_old_or_new_content() {
    let Some(g) = Garage::get("s3_kill_9_at_any_moment_leaves_old_or_new_content") else {
        return;
    };
    let pair = S3Pair::new(&g, "crash", false, "batch_max_items = 25");
    let client = g.client(false);
    let rt = runtime();
    let replica = pair.b_replica();
    write_items(&pair.a_data(), 0, 1500);
    let mut interrupted = 0;
    for (round, delay_ms) in [150u64, 400, 700, 1000, 1500, 2200].into_iter().enumerate() {
        let old = rt.block_on(object_tree(&client, &replica));
        if round > 0 {
            write_items(&pair.a_data(), round as u32, 1500);
        }
        let new = tree(&pair.a_data());
        let mut child = pair
            .sync_cmd()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        for (path, content) in rt.block_on(object_tree(&client, &replica)) {
            assert!(
                old.get(&path) == Some(&content) || new.get(&path) == Some(&content),
                "round {round}: {path} is torn or foreign"
            );
        }
        // The next run takes over the dead process's lock at once and completes.
        let started = std::time::Instant::now();
        Run::of(pair.sync_cmd()).run();
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "round {round}: the rerun waited for the dead holder's lease"
        );
        assert!(
            rt.block_on(object_tree(&client, &replica)) == new,
            "round {round}: no convergence"
        );
        no_temporaries(&rt, &client, &pair, &format!("round {round}"));
    }
    assert!(
        interrupted >= 3,
        "the kills landed mid-sync only {interrupted} times"
    );
}

#[test]
fn s3_two_processes_syncing_one_pair_serialise() {
    let Some(g) = Garage::get("s3_two_processes_syncing_one_pair_serialise") else {
        return;
    };
    let pair = S3Pair::new(&g, "two", false, "batch_max_items = 100");
    let client = g.client(false);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 800);
    let spawn = || {
        pair.sync_cmd()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let copied: Vec<u64> = [&a, &b]
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().parse().unwrap())
        .collect();
    // One did the work; the other, after waiting, found nothing left.
    assert!(copied.contains(&0) && copied.contains(&800), "{copied:?}");
    let waited = [&a, &b]
        .iter()
        .any(|o| String::from_utf8_lossy(&o.stderr).contains("waiting for the pair lock"));
    assert!(waited, "neither process reported waiting for the lock");
    assert_eq!(
        rt.block_on(object_tree(&client, &pair.b_replica())),
        tree(&pair.a_data())
    );
}

/// Restarts a stopped cluster node even when the test fails.
struct NodeBack<'a>(&'a Garage, &'static str);
impl Drop for NodeBack<'_> {
    fn drop(&mut self) {
        self.0.script(&["node-start", self.1]);
    }
}

#[test]
fn s3_cluster_node_stopped_mid_sync() {
    let Some(g) = Garage::get("s3_cluster_node_stopped_mid_sync") else {
        return;
    };
    let pair = S3Pair::new(&g, "resilience", true, "batch_max_items = 100");
    let client = g.client(true);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 3000);
    for i in 0..4u32 {
        let big: Vec<u8> = (0..(11 * 1024 * 1024 + i))
            .map(|b| (b % 239) as u8)
            .collect();
        std::fs::write(pair.a_data().join(format!("big-{i}.bin")), big).unwrap();
    }
    let mut child = pair
        .sync_cmd()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sync ended before the node was stopped: make the data set larger"
    );
    g.script(&["node-stop", "2"]);
    let _back = NodeBack(&g, "2");
    let first = child.wait_with_output().unwrap();
    if !first.status.success() {
        // A clean failure is allowed; the next run must complete.
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert_eq!(first.status.code(), Some(1), "{stderr}");
        succeeds(&mut pair.sync_cmd());
    }
    assert_eq!(
        rt.block_on(object_tree(&client, &pair.b_replica())),
        tree(&pair.a_data())
    );
}
