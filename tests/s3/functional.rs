//! S3 functional tests: folder markers, a mixed pair syncing both ways, credentials and errors.

use super::*;

/// Writes an empty object under a raw key (one ending in `/` included, which
/// `object_store` cannot write), with curl's own request signing.
fn put_raw(g: &Garage, key: &str) {
    let (id, secret) = g.keys(false);
    let url = format!("{}/{}/{key}", g.endpoint(false), g.bucket(false));
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail-with-body",
            "--aws-sigv4",
            "aws:amz:garage:s3",
        ])
        .args(["--user", &format!("{id}:{secret}")])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(["-X", "PUT", "--data-binary", "", &url])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl PUT {url}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn s3_folder_markers_in_a_source_bucket_are_not_items() {
    let Some(g) = Garage::get("s3_folder_markers_in_a_source_bucket_are_not_items") else {
        return;
    };
    let pair = S3Pair::new(&g, "markers", false, "");
    let client = g.client(false);
    let rt = runtime();
    rt.block_on(async {
        for name in ["docs/a", "docs/b", "top"] {
            client
                .put(
                    &pair.b_data_key(name),
                    PutPayload::from(name.as_bytes().to_vec()),
                )
                .await
                .unwrap();
        }
        // A real empty item stays an item.
        client
            .put(&pair.b_data_key("zero"), PutPayload::default())
            .await
            .unwrap();
    });
    // What an S3 console's "create folder" writes: an empty object whose key
    // ends in '/', for a folder with items and for an empty one.
    for folder in ["docs/", "emptyfolder/"] {
        put_raw(&g, &format!("{}/{folder}", pair.b_data()));
    }
    let out = succeeds(&mut pair.sync_cmd());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("disappeared"), "{stderr}");
    let expected = |names: &[&str]| -> BTreeMap<String, Vec<u8>> {
        names
            .iter()
            .map(|n| {
                let content = if *n == "zero" {
                    Vec::new()
                } else {
                    n.as_bytes().to_vec()
                };
                (n.to_string(), content)
            })
            .collect()
    };
    assert_eq!(
        tree(&pair.a_replica()),
        expected(&["docs/a", "docs/b", "top", "zero"])
    );
    // The markers hold nothing back: a deletion goes through.
    rt.block_on(client.delete(&pair.b_data_key("docs/b")))
        .unwrap();
    succeeds(&mut pair.sync_cmd());
    assert_eq!(
        tree(&pair.a_replica()),
        expected(&["docs/a", "top", "zero"])
    );
}

/// A's replica in the bucket equals A's data, and B's replica on disk equals
/// B's data in the bucket.
fn both_replicas_equal_their_sources(
    rt: &tokio::runtime::Runtime,
    client: &AmazonS3,
    pair: &S3Pair,
) {
    assert_eq!(
        rt.block_on(object_tree(client, &pair.b_replica())),
        tree(&pair.a_data()),
        "A's replica in the bucket"
    );
    assert_eq!(
        tree(&pair.a_replica()),
        rt.block_on(object_tree(client, &pair.b_data())),
        "B's replica on disk"
    );
}

#[test]
fn s3_mixed_pair_syncs_both_ways_and_only_what_changed() {
    let Some(g) = Garage::get("s3_mixed_pair_syncs_both_ways_and_only_what_changed") else {
        return;
    };
    let pair = S3Pair::new(&g, "mixed", false, "batch_max_items = 50");
    let client = g.client(false);
    let rt = runtime();
    write_items(&pair.a_data(), 0, 300);
    // A large item: uploaded in parts, streamed, not held in memory.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(pair.a_data().join("big.bin"), &big).unwrap();
    rt.block_on(async {
        for i in 0..40 {
            client
                .put(
                    &pair.b_data_key(&format!("u/doc {i}#x")),
                    PutPayload::from(format!("b doc {i}").into_bytes()),
                )
                .await
                .unwrap();
        }
    });

    // Garage accepts If-None-Match and overwrites anyway: found out and said.
    Run::of(pair.sync_cmd())
        .stdout_is("341\n")
        .stderr_has("does not honour conditional writes")
        .run();
    both_replicas_equal_their_sources(&rt, &client, &pair);
    assert!(tree(&pair.a_replica()).contains_key("u/doc 7#x"));

    // Nothing changed: nothing copied. Then one change each side: one copied each.
    Run::of(pair.sync_cmd()).stdout_is("0\n").run();
    std::fs::write(pair.a_data().join("d03/item-3"), "changed").unwrap();
    std::fs::remove_file(pair.a_data().join("d04/item-4")).unwrap();
    rt.block_on(client.put(
        &pair.b_data_key("u/doc 1#x"),
        PutPayload::from_static(b"changed in b"),
    ))
    .unwrap();
    Run::of(pair.sync_cmd()).stdout_is("2\n").run();
    both_replicas_equal_their_sources(&rt, &client, &pair);
    // Byte-level verification reads both sides, the bucket included: in sync,
    // then an object changed behind poolsync's back is named.
    let verify = |pair: &S3Pair| {
        let out = succeeds(
            pair.cmd(&format!(
                "debug_inter_pool_replication(\"{A}\", #{{module: \"PresenceFocus\"}})"
            ))
            .arg("--json"),
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(verify(&pair)["in_sync"], true);
    rt.block_on(client.put(
        &pair.key(&format!("backup/{A}/{PF}/d05/item-5")),
        PutPayload::from_static(b"tampered"),
    ))
    .unwrap();
    let v = verify(&pair);
    assert_eq!(v["in_sync"], false);
    let check = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == A)
        .unwrap();
    assert_eq!(check["different"], serde_json::json!(["d05/item-5"]));

    // No temporaries, no journal, no lock keys left behind.
    let meta = rt.block_on(object_tree(&client, &pair.key(".poolsync")));
    for key in meta.keys() {
        assert!(
            !key.starts_with("staging/") && !key.contains("journal/") && !key.contains("locks/"),
            "left behind: {key}"
        );
    }
}

#[test]
fn s3_credentials_never_show_and_errors_name_the_endpoint() {
    let Some(g) = Garage::get("s3_credentials_never_show_and_errors_name_the_endpoint") else {
        return;
    };
    let pair = S3Pair::new(&g, "errors", false, "");
    let (_, secret) = g.keys(false);
    write_items(&pair.a_data(), 0, 5);
    let out = Run::of(pair.cmd(&format!(
        "print(get_pool(\"{B}\").store); print(get_pool(\"{B}\"));"
    )))
    .stdout_has(format!("s3://{}/", g.bucket(false)))
    .run();
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(!all.contains(secret), "the secret was printed: {all}");

    // Wrong secret: a one-line error naming the endpoint, the secret nowhere,
    // and ErrorState with the reason at the pool that could be reached.
    let creds = pair.path().join("s3.credentials");
    let text = std::fs::read_to_string(&creds).unwrap();
    std::fs::write(&creds, text.replace(secret, &"0".repeat(secret.len()))).unwrap();
    let out = Run::of(pair.sync_cmd())
        .exit(1)
        .stderr_has(g.endpoint(false))
        .stderr_has("access denied")
        .run();
    assert!(!out.stderr().contains(secret));
    let engine = pair.engine();
    let rt = runtime();
    let status = rt
        .block_on(engine.pool_status(&crate::common::pair(&engine, A), &[Module::PresenceFocus]))
        .unwrap();
    let m = &status.backup_modules[0];
    assert_eq!(m.export_status, ExportState::ErrorState);
    assert!(
        m.last_error
            .as_deref()
            .is_some_and(|e| e.contains("access denied")),
        "{:?}",
        m.last_error
    );

    // Readable by others: refused before any request.
    std::fs::write(&creds, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    Run::of(pair.sync_cmd())
        .exit(1)
        .stderr_has("chmod 600")
        .run();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A bucket that does not exist.
    let deployment = pair.path().join("deployment.toml");
    let d = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(
        &deployment,
        d.replace(
            &format!("s3://{}/", g.bucket(false)),
            "s3://no-such-bucket-here/",
        ),
    )
    .unwrap();
    Run::of(pair.sync_cmd())
        .exit(1)
        .stderr_has("no-such-bucket-here")
        .stderr_has("bucket does not exist")
        .run();
}
