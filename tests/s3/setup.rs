//! Locks that need no server, store URLs, `init --s3`, and failover with one pool in a bucket.

use super::*;

#[test]
fn contender_locks_exclude_and_release() {
    let rt = runtime();
    rt.block_on(async {
        let backend = memory_backend(&unique("contender"));
        let store = |mode| {
            ObjectBackedStore::new(backend.clone(), Key::from("p"), "mem".into())
                .with_lock_mode(mode)
        };
        let (one, two) = (store(LockMode::Contender), store(LockMode::Contender));
        let held = one.try_lock("pair-x", "first").await.unwrap().ok().unwrap();
        let refused = two.try_lock("pair-x", "second").await.unwrap();
        assert_eq!(refused.err().unwrap().0, "first");
        held.release().await;
        let taken = two.try_lock("pair-x", "second").await.unwrap();
        assert!(taken.is_ok(), "free after release");
        // A holder of this machine that is no longer running is not waited for.
        let three = store(LockMode::Contender);
        let dead = poolsync::store::lock_owner().replacen(
            &format!("pid {} ", std::process::id()),
            "pid 999999999 ",
            1,
        );
        let stale = three.try_lock("pair-y", &dead).await.unwrap().ok().unwrap();
        std::mem::forget(stale);
        assert!(one.try_lock("pair-y", "live").await.unwrap().is_ok());
        // One that does not say which machine (boot, PID namespace) it ran on
        // may be another machine's with the same name: it is waited out.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let unsure = format!("poolsync pid 999999999 on {} since now", host.trim());
        let stale = three
            .try_lock("pair-w", &unsure)
            .await
            .unwrap()
            .ok()
            .unwrap();
        std::mem::forget(stale);
        assert!(one.try_lock("pair-w", "live").await.unwrap().is_err());
        // Conditional mode excludes the same way.
        let (c1, c2) = (store(LockMode::Conditional), store(LockMode::Conditional));
        let held = c1.try_lock("pair-z", "c1").await.unwrap().ok().unwrap();
        assert!(c2.try_lock("pair-z", "c2").await.unwrap().is_err());
        held.release().await;
        assert!(c2.try_lock("pair-z", "c2").await.unwrap().is_ok());
    });
}

#[test]
fn s3_store_urls_are_checked_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.toml");
    std::fs::write(
        &file,
        format!(
            "[deployment]\nname = \"t\"\ncms_master = \"{A}\"\n[[site]]\nidentity = \"S\"\nsite_id = 1\n[[pool]]\nfqdn = \"{A}\"\nsite = \"S\"\nstore = \"s3://Bad_Bucket/x\"\n"
        ),
    )
    .unwrap();
    let err = topology::load(&file).unwrap_err().to_string();
    assert!(
        err.contains(":10:") && err.contains("not a valid bucket name"),
        "{err}"
    );
    std::fs::write(
        &file,
        format!(
            "[deployment]\nname = \"t\"\ncms_master = \"{A}\"\n[[site]]\nidentity = \"S\"\nsite_id = 1\n[[pool]]\nfqdn = \"{A}\"\nsite = \"S\"\ns3_credentials = \"c\"\n"
        ),
    )
    .unwrap();
    let err = topology::load(&file).unwrap_err().to_string();
    assert!(err.contains("not an s3:// URL"), "{err}");
}

#[test]
fn s3_init_lays_out_a_deployment_in_a_bucket_that_syncs() {
    let Some(g) = Garage::get("s3_init_lays_out_a_deployment_in_a_bucket_that_syncs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = succeeds(poolsync_in(dir.path()).arg("init").arg(dir.path()).args([
        "--s3",
        g.endpoint(false),
        "--bucket",
        g.bucket(false),
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("garage bucket create"));
    // Fill in the key; give this run its own prefix in the shared bucket.
    let (id, secret) = g.keys(false);
    let creds = dir.path().join("s3.credentials");
    let text = std::fs::read_to_string(&creds)
        .unwrap()
        .replace("REPLACE-WITH-THE-KEY-ID", id)
        .replace("REPLACE-WITH-THE-SECRET", secret);
    std::fs::write(&creds, text).unwrap();
    let prefix = unique("init");
    let deployment = dir.path().join("deployment.toml");
    let text = std::fs::read_to_string(&deployment).unwrap().replace(
        &format!("s3://{}/pool", g.bucket(false)),
        &format!("s3://{}/{prefix}/pool", g.bucket(false)),
    );
    std::fs::write(&deployment, text).unwrap();
    // Both pools in the bucket: a pair with no local disk at all.
    let client = g.client(false);
    let rt = runtime();
    let data = Key::from(format!("{prefix}/pool1.contoso.com/data/{PF}"));
    rt.block_on(async {
        for i in 0..30 {
            client
                .put(
                    &data.clone().join(format!("user{i}.json")),
                    PutPayload::from(format!("{{\"user\": {i}}}").into_bytes()),
                )
                .await
                .unwrap();
        }
    });
    let out = succeeds(
        poolsync_in(dir.path())
            .arg("--deployment")
            .arg(&deployment)
            .args([
                "-c",
                "invoke_backup_service_sync(\"pool1.contoso.com\").items_copied",
            ]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "30");
    let replica = Key::from(format!(
        "{prefix}/pool2.contoso.com/backup/pool1.contoso.com/{PF}"
    ));
    assert_eq!(
        rt.block_on(object_tree(&client, &replica)),
        rt.block_on(object_tree(&client, &data))
    );
}
