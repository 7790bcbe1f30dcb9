//! Failover, failback, restore and the CMS move with one pool in a bucket,
//! against a real Garage (see mod.rs: skipped loudly without one, a failure
//! in CI).

use object_store::{ObjectStoreExt, PutPayload};

use super::{A, B, Garage, PF, S3Pair, object_tree, runtime, succeeds, write_items};
use crate::common::tree;

const CMS: &str = "CentralMgmt.CMSMaster";

fn run(pair: &S3Pair, code: &str) -> String {
    let out = succeeds(&mut pair.cmd(code));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fails(pair: &S3Pair, code: &str) -> String {
    let out = pair.cmd(code).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{code} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Failover and failback with one pool in a bucket: B (in the bucket) fails
/// over to A's local replica and back, in disaster mode with a divergent
/// object that is quarantined in the bucket; then, with the CMS moved to B,
/// A fails over to B and its active copy is a prefix of the bucket.
#[test]
fn s3_failover_and_failback_both_ways() {
    let Some(g) = Garage::get("s3_failover_and_failback_both_ways") else {
        return;
    };
    let pair = S3Pair::new(&g, "failover", false, "batch_max_items = 50");
    let client = g.client(false);
    let rt = runtime();
    rt.block_on(async {
        for i in 0..60 {
            let body = PutPayload::from(format!("b doc {i}").into_bytes());
            client
                .put(&pair.b_data_key(&format!("u/doc-{i}")), body)
                .await
                .unwrap();
        }
    });
    write_items(&pair.a_data(), 0, 80);
    let run = |code: String| run(&pair, &code);
    run(format!("invoke_backup_service_sync(\"{B}\")"));

    // B is lost, with one object the last sync never saw.
    rt.block_on(client.put(&pair.b_data_key("u/late"), PutPayload::from_static(b"late")))
        .unwrap();
    let out = run(format!(
        "let r = invoke_pool_failover(\"{B}\", #{{disaster_mode: true}}); `${{r.phase}} ${{r.items_lost}}`"
    ));
    assert_eq!(out, "FailedOver 1");
    // Served from A's local replica meanwhile.
    std::fs::write(
        pair.a_replica().join("u/doc-3"),
        "changed while failed over",
    )
    .unwrap();
    let out = run(format!("invoke_pool_failback(\"{B}\").quarantine.folder"));
    let moved = rt.block_on(object_tree(&client, &pair.key(&format!("{out}/{PF}"))));
    assert_eq!(moved.get("u/late").map(Vec::as_slice), Some(&b"late"[..]));
    let home = rt.block_on(object_tree(&client, &pair.b_data()));
    assert_eq!(
        home,
        tree(&pair.a_replica()),
        "B's bucket data is the active copy's"
    );
    assert_eq!(
        home.get("u/doc-3").map(Vec::as_slice),
        Some(&b"changed while failed over"[..])
    );

    // The CMS moves to B; then A fails over into the bucket and back.
    assert_eq!(
        run("invoke_management_server_failover().active_at".into()),
        B
    );
    let out = run(format!("invoke_pool_failover(\"{A}\").active_copy"));
    assert!(
        out.starts_with("s3://") && out.contains(&format!("/backup/{A}")),
        "{out}"
    );
    rt.block_on(client.put(
        &pair.key(&format!("backup/{A}/{PF}/d01/item-1")),
        PutPayload::from_static(b"written in the bucket"),
    ))
    .unwrap();
    run(format!("invoke_pool_failback(\"{A}\")"));
    assert_eq!(
        std::fs::read_to_string(pair.a_data().join("d01/item-1")).unwrap(),
        "written in the bucket"
    );
    assert_eq!(
        rt.block_on(object_tree(&client, &pair.b_replica())),
        tree(&pair.a_data())
    );
    assert_eq!(
        run("invoke_management_server_failover().active_at".into()),
        A
    );
    let out = run(format!("debug_inter_pool_replication(\"{A}\").in_sync"));
    assert_eq!(out, "true");
}

/// `restore_pool_data` with the pool in a bucket: lost objects come back from
/// the local replica, a changed one is kept unless `overwrite`, and then its
/// own version is quarantined in the bucket; the next sync deletes nothing.
#[test]
fn s3_restore_brings_back_lost_objects_and_quarantines_in_the_bucket() {
    let Some(g) = Garage::get("s3_restore_brings_back_lost_objects_and_quarantines_in_the_bucket")
    else {
        return;
    };
    let pair = S3Pair::new(&g, "restore", false, "batch_max_items = 7");
    let client = g.client(false);
    let rt = runtime();
    rt.block_on(async {
        for i in 0..40 {
            let body = PutPayload::from(format!("b doc {i}").into_bytes());
            client
                .put(&pair.b_data_key(&format!("u/doc-{i}")), body)
                .await
                .unwrap();
        }
    });
    run(&pair, &format!("invoke_backup_service_sync(\"{B}\")"));
    let synced = rt.block_on(object_tree(&client, &pair.b_data()));
    rt.block_on(async {
        for i in 0..10 {
            client
                .delete(&pair.b_data_key(&format!("u/doc-{i}")))
                .await
                .unwrap();
        }
        let edit = PutPayload::from_static(b"edited in the bucket");
        client
            .put(&pair.b_data_key("u/doc-20"), edit)
            .await
            .unwrap();
    });
    let plan = run(
        &pair,
        &format!("restore_pool_data(\"{B}\", #{{what_if: true}}).would_restore.len()"),
    );
    assert_eq!(plan, "10");
    let copied = run(
        &pair,
        &format!(
            "restore_pool_data(\"{B}\", #{{module: \"PresenceFocus\"}}).modules[0].items_copied"
        ),
    );
    assert_eq!(copied, "10");
    let home = rt.block_on(object_tree(&client, &pair.b_data()));
    assert_eq!(
        home.get("u/doc-20").map(Vec::as_slice),
        Some(&b"edited in the bucket"[..]),
        "kept without overwrite"
    );
    for i in 0..10 {
        let item = format!("u/doc-{i}");
        assert_eq!(home.get(&item), synced.get(&item), "{item} is back");
    }
    let folder = run(
        &pair,
        &format!("restore_pool_data(\"{B}\", #{{overwrite: true}}).quarantine.folder"),
    );
    let home = rt.block_on(object_tree(&client, &pair.b_data()));
    assert!(home == synced, "the bucket's data is the replica's again");
    let aside = rt.block_on(object_tree(&client, &pair.key(&format!("{folder}/{PF}"))));
    assert_eq!(
        aside.get("u/doc-20").map(Vec::as_slice),
        Some(&b"edited in the bucket"[..]),
        "the pool's own version is kept in the bucket's quarantine"
    );
    let deleted = run(
        &pair,
        &format!("invoke_backup_service_sync(\"{B}\").items_deleted"),
    );
    assert_eq!(
        deleted, "0",
        "after a restore the next sync deletes nothing"
    );
}

/// A disaster CMS move whose new master keeps the CMS replica in a bucket:
/// refused before the replica ever completed a sync; after one, the active
/// CMS is a prefix of the bucket, the loss names what the old master changed,
/// and at its return that change is quarantined and the bucket's CMS flows
/// to it.
#[test]
fn s3_disaster_cms_move_into_a_bucket_and_back() {
    let Some(g) = Garage::get("s3_disaster_cms_move_into_a_bucket_and_back") else {
        return;
    };
    let pair = S3Pair::new(&g, "cmsmove", false, "batch_max_items = 7");
    let client = g.client(false);
    let rt = runtime();
    let cms_home = pair.path().join("stores").join(A).join("data").join(CMS);
    write_items(&cms_home, 0, 20);
    let err = fails(
        &pair,
        "invoke_management_server_failover(#{disaster_mode: true})",
    );
    assert!(err.contains("never completed a sync"), "{err}");
    run(
        &pair,
        &format!("invoke_backup_service_sync(\"{A}\", #{{module: \"CMSMaster\"}})"),
    );
    std::fs::write(cms_home.join("unsynced.xml"), "<Lost/>").unwrap();
    let out = run(
        &pair,
        "let r = invoke_management_server_failover(#{disaster_mode: true}); `${r.active_at} ${r.items_lost} ${r.loss[0].changed} ${r.active_copy}`",
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[..3], [B, "1", "[\"unsynced.xml\"]"], "{out}");
    assert!(
        words[3].starts_with("s3://") && words[3].contains(&format!("/backup/{A}/{CMS}")),
        "{out}"
    );
    let active = pair.key(&format!("backup/{A}/{CMS}"));
    rt.block_on(client.put(
        &pair.key(&format!("backup/{A}/{CMS}/new-master.xml")),
        PutPayload::from_static(b"<New/>"),
    ))
    .unwrap();
    // The old master is back: its first sync moves its change aside, then
    // the bucket's active CMS flows to it.
    run(&pair, &format!("invoke_backup_service_sync(\"{A}\")"));
    assert!(!cms_home.join("unsynced.xml").exists());
    assert_eq!(
        tree(&cms_home),
        rt.block_on(object_tree(&client, &active)),
        "the old master holds the active CMS"
    );
    let paths = run(
        &pair,
        &format!("get_backup_service_status(\"{A}\").failover.quarantines[0].paths"),
    );
    assert!(paths.contains(&format!("{CMS}/unsynced.xml")), "{paths}");
    assert_eq!(
        run(&pair, "invoke_management_server_failover().active_at"),
        A
    );
    let in_sync = run(
        &pair,
        &format!("debug_inter_pool_replication(\"{A}\", #{{module: \"CMSMaster\"}}).in_sync"),
    );
    assert_eq!(in_sync, "true");
}
