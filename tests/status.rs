//! Status, settings, verification and `backup_pool`.

use std::path::Path;
use std::sync::Arc;

use poolsync::sync::{ExportState, ImportState, SyncEngine, SyncOptions};
use poolsync::topology::{self, Module};

use crate::common::{ATL1, ATL2, DAL1, Env, PairToml, tree};

const A: &str = "a.test.com";
const B: &str = "b.test.com";
const PF: &str = "UserServices.PresenceFocus";

fn write_deployment(dir: &Path, backup_service: &str) -> std::path::PathBuf {
    let file = PairToml::new(A, B)
        .backup_service(&format!("# tuned for the test\n{backup_service}"))
        .write(dir);
    // A comment the settings' writer must keep.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("# a test pair\n{text}")).unwrap();
    file
}

fn items(dir: &Path, pool: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let f = dir
            .join("stores")
            .join(pool)
            .join("data")
            .join(PF)
            .join(format!("{prefix}{i:03}"));
        std::fs::write(f, format!("{pool} {prefix} {i}")).unwrap();
    }
}

fn state(
    engine: &SyncEngine,
    rt: &tokio::runtime::Runtime,
    pool: &str,
) -> (ExportState, ImportState, Option<u64>, Option<String>) {
    let s = rt
        .block_on(engine.pool_status(&crate::common::pair(engine, pool), &[Module::PresenceFocus]))
        .unwrap();
    let m = &s.backup_modules[0];
    (
        m.export_status,
        m.import_status,
        m.pending_items,
        m.last_error.clone(),
    )
}

/// A pair with 25 items at A and 3 at B, batches of 10 and one batch per
/// cycle, not synced yet: the engine and a runtime to drive it.
fn small_batched_pair(dir: &Path) -> (SyncEngine, tokio::runtime::Runtime) {
    let file = write_deployment(
        dir,
        "batch_max_items = 10\nmax_batches_per_user_store_sync = 1",
    );
    items(dir, A, "a", 25);
    items(dir, B, "b", 3);
    let d = Arc::new(topology::load(&file).unwrap());
    (SyncEngine::new(d), tokio::runtime::Runtime::new().unwrap())
}

/// One whole sync of the pair of A; whether it succeeded.
fn sync_all(engine: &SyncEngine, rt: &tokio::runtime::Runtime) -> bool {
    rt.block_on(engine.sync_pair(&crate::common::pair(engine, A), &SyncOptions::default()))
        .is_ok()
}

#[test]
fn a_pair_walks_through_the_export_states_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, rt) = small_batched_pair(dir.path());
    let cycle = SyncOptions {
        per_cycle: true,
        ..SyncOptions::default()
    };
    assert_eq!(
        state(&engine, &rt, A),
        (
            ExportState::NotInitialized,
            ImportState::NotInitialized,
            Some(25),
            None
        )
    );
    rt.block_on(engine.sync_pair(&crate::common::pair(&engine, A), &cycle))
        .unwrap();
    let (export, import, pending, _) = state(&engine, &rt, A);
    assert_eq!(
        (export, import, pending),
        (
            ExportState::NonSteadyState,
            ImportState::NormalState,
            Some(15)
        )
    );
    rt.block_on(engine.sync_pair(&crate::common::pair(&engine, A), &cycle))
        .unwrap();
    assert_eq!(
        state(&engine, &rt, A).0,
        ExportState::SteadyState,
        "5 pending fit in one batch"
    );
    assert!(sync_all(&engine, &rt));
    assert_eq!(state(&engine, &rt, A).0, ExportState::FinalState);
    assert_eq!(state(&engine, &rt, B).0, ExportState::FinalState);
}

#[test]
fn an_unreachable_partner_is_an_error_state_with_the_reason_until_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, rt) = small_batched_pair(dir.path());
    assert!(sync_all(&engine, &rt));
    let b_store = dir.path().join("stores").join(B);
    let away = dir.path().join("b-away");
    std::fs::rename(&b_store, &away).unwrap();
    assert!(!sync_all(&engine, &rt));
    let (export, _, _, error) = state(&engine, &rt, A);
    assert_eq!(export, ExportState::ErrorState);
    let error = error.unwrap_or_default();
    assert!(
        error.contains(B) && (error.contains("unreachable") || error.contains("does not exist")),
        "last_error says why: {error}"
    );
    std::fs::rename(&away, &b_store).unwrap();
    items(dir.path(), A, "late", 2);
    assert!(sync_all(&engine, &rt));
    assert_eq!(
        state(&engine, &rt, A),
        (
            ExportState::FinalState,
            ImportState::NormalState,
            Some(0),
            None
        )
    );
}

#[test]
fn an_import_that_cannot_be_applied_is_an_import_error_state() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, rt) = small_batched_pair(dir.path());
    assert!(sync_all(&engine, &rt));
    // A file where the replica folder must go.
    let replica_of_b = dir
        .path()
        .join("stores")
        .join(A)
        .join("backup")
        .join(B)
        .join(PF);
    std::fs::remove_dir_all(&replica_of_b).unwrap();
    std::fs::write(&replica_of_b, "in the way").unwrap();
    items(dir.path(), B, "more", 2);
    assert!(!sync_all(&engine, &rt));
    let (_, import, _, error) = state(&engine, &rt, A);
    assert_eq!(import, ImportState::ErrorState);
    assert!(error.is_some());
}

#[test]
fn cms_master_away_from_the_cms_pool_is_not_initialized() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "-c", &format!("get_backup_service_status(\"{DAL1}\", #{{category: \"CMS\"}}).backup_modules.map(|m| m.export_status)")])
        .ok();
    assert_eq!(out.stdout().trim(), "NotInitialized");
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let out = env
        .cmd()
        .args(["--demo", "-c", &format!("let s = get_backup_service_status(\"{ATL1}\"); [s.overall_export_status, s.overall_import_status, s.backup_modules.len()]")])
        .ok();
    assert_eq!(out.stdout().trim(), "[\"FinalState\", \"NormalState\", 3]");
    let out = env
        .cmd()
        .args([
            "--demo",
            "--json",
            "-c",
            &format!("get_backup_service_status(\"{ATL1}\", #{{module: \"DataConf\"}})"),
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["backup_modules"][0]["identity"], "ConfServices.DataConf");
    let when = v["backup_modules"][0]["last_export_time"].as_str().unwrap();
    assert!(
        when.starts_with("20") && when.ends_with('Z'),
        "RFC 3339: {when}"
    );

    // A damaged record leaves the state unknown: ErrorState and why, not
    // NotInitialized; the next sync rewrites it.
    let record = env
        .store(ATL1)
        .join(".poolsync/meta/status/export")
        .join(DAL1)
        .join("ConfServices.DataConf");
    std::fs::write(&record, "garbage").unwrap();
    let module = format!(
        "let m = get_backup_service_status(\"{ATL1}\", #{{module: \"DataConf\"}}).backup_modules[0]; `${{m.export_status}} ${{m.last_error}}`"
    );
    let out = env.demo(&module);
    assert!(
        out.stdout().starts_with("ErrorState ") && out.stdout().contains("is damaged"),
        "{}",
        out.stdout()
    );
    env.demo(&format!("invoke_backup_service_sync(\"{ATL1}\")"));
    let out = env.demo(&module);
    assert_eq!(out.stdout().trim(), "FinalState");
}

#[test]
fn debug_inter_pool_replication_names_each_difference() {
    let env = Env::with_demo();
    env.cmd()
        .args([
            "--demo",
            "-c",
            &format!("invoke_backup_service_sync(\"{ATL1}\", #{{module: \"DataConf\"}})"),
        ])
        .ok();
    let replica = env
        .store(DAL1)
        .join("backup")
        .join(ATL1)
        .join("ConfServices.DataConf");
    let files: Vec<String> = tree(&replica).into_keys().collect();
    let corrupt = replica.join(&files[0]);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&corrupt, bytes).unwrap();
    std::fs::remove_file(replica.join(&files[1])).unwrap();
    std::fs::write(replica.join("intruder.bin"), "x").unwrap();
    let out = env
        .cmd()
        .args([
            "--demo",
            "--json",
            "-c",
            &format!("debug_inter_pool_replication(\"{ATL1}\", #{{module: \"DataConf\"}})"),
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["in_sync"], false);
    let check = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == ATL1)
        .unwrap();
    assert_eq!(check["different"], serde_json::json!([files[0]]));
    assert_eq!(check["missing"], serde_json::json!([files[1]]));
    assert_eq!(check["extra"], serde_json::json!(["intruder.bin"]));
    let mismatches = check["manifest_mismatches"].as_array().unwrap();
    assert!(
        mismatches.contains(&serde_json::json!(files[0]))
            && mismatches.contains(&serde_json::json!("intruder.bin"))
    );
    let back = v["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == DAL1)
        .unwrap();
    assert_eq!(back["in_sync"], true);
    let err = env.demo_error("debug_inter_pool_replication(\"red-cs-003.litwareinc.com\")");
    assert!(err.contains("has no backup pool"), "{err}");
    // CMSMaster of a pair that does not carry it: nothing to compare, so an
    // error, not "in sync" over no modules.
    let err = env.demo_error(&format!(
        "debug_inter_pool_replication(\"{ATL2}\", #{{module: \"CMSMaster\"}})"
    ));
    assert!(
        err.contains("do not host the Central Management Store"),
        "{err}"
    );
}

#[test]
fn concurrent_settings_changes_all_land() {
    let env = Env::new();
    let file = write_deployment(env.path(), "");
    let settings = [
        "batch_max_items",
        "batch_max_kb",
        "transfer_parallelism",
        "max_concurrent_calls",
        "max_batches_per_cms_sync",
        "max_batches_per_user_store_sync",
    ];
    // Each writer sets its own setting many times, all at once.
    let children: Vec<_> = settings
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let code = format!(
                "for n in 1..=20 {{ set_backup_service_configuration(#{{{name}: n + {i}}}); }}"
            );
            env.cmd()
                .arg("--deployment")
                .arg(&file)
                .args(["-c", &code])
                .start()
        })
        .collect();
    for child in children {
        crate::common::finished_ok(child);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for (i, name) in settings.iter().enumerate() {
        assert!(
            text.contains(&format!("{name} = {}", 20 + i)),
            "{name}:\n{text}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("poolsync-tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn settings_are_validated_and_written_back_with_comments() {
    let env = Env::new();
    let file = write_deployment(env.path(), "sync_interval = \"00:02:00\"  # two minutes");
    let run = |code: &str| env.cmd().arg("--deployment").arg(&file).args(["-c", code]);
    run(
        "set_backup_service_configuration(#{sync_interval: \"00:00:30\", max_concurrent_calls: 4}).sync_interval",
    )
    .stdout_is("00:00:30\n")
    .run();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# a test pair") && text.contains("# tuned for the test"),
        "comments kept:\n{text}"
    );
    assert!(
        text.contains("sync_interval = \"00:00:30\"  # two minutes")
            && text.contains("max_concurrent_calls = 4"),
        "{text}"
    );
    run("get_backup_service_configuration().max_concurrent_calls")
        .stdout_is("4\n")
        .run();
    for (code, needle) in [
        (
            "set_backup_service_configuration(#{sync_interval: \"00:00:01\"})",
            "out of range",
        ),
        (
            "set_backup_service_configuration(#{sync_interval: \"03:00:01\"})",
            "out of range",
        ),
        (
            "set_backup_service_configuration(#{max_concurrent_calls: 0})",
            "max_concurrent_calls must be a number from 1 to 1000, not 0",
        ),
        (
            "set_backup_service_configuration(#{max_concurrent_calls: 9223372036854775807})",
            "max_concurrent_calls must be a number from 1 to 1000, not 9223372036854775807",
        ),
        (
            "set_backup_service_configuration(#{transfer_parallelism: 1000000})",
            "transfer_parallelism must be a number from 1 to 256",
        ),
        (
            "set_backup_service_configuration(#{speed: 1})",
            "unknown setting 'speed'",
        ),
        (
            "set_backup_service_configuration(#{batch_max_items: \"many\"})",
            "must be a whole number",
        ),
        (
            "set_backup_service_configuration(#{watch_changes: 1})",
            "watch_changes must be true or false, not int",
        ),
    ] {
        run(code).exit(1).stderr_has(needle).run();
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "a refused change writes nothing"
    );
}

#[test]
fn backup_pool_waits_for_the_state_it_was_asked_for() {
    let env = Env::with_demo();
    let out = env
        .cmd()
        .args(["--demo", "-c", &format!("backup_pool(\"{ATL2}\", #{{full_backup: true, wait_time: 0}}).overall_export_status")])
        .ok();
    assert_eq!(out.stdout().trim(), "FinalState");
    // A Pool, with no options, as every other function takes one.
    let out = env.demo(&format!(
        "get_pool(\"{ATL2}\").backup_pool().overall_export_status"
    ));
    assert_eq!(out.stdout().trim(), "FinalState");
    let err = env.demo_error(&format!(
        "backup_pool(\"{ATL2}\", #{{full_backup: true, steady_state: true}})"
    ));
    assert!(err.contains("exactly one of full_backup"), "{err}");
    // CMS of a pair that does not host it: nothing to wait for, so an error,
    // not a success that synced nothing.
    let err = env.demo_error(&format!(
        "backup_pool(\"{ATL2}\", #{{category: \"CMS\", full_backup: true}})"
    ));
    assert!(
        err.contains("do not host the Central Management Store"),
        "{err}"
    );
    let err = env.demo_error(&format!(
        "backup_pool(\"{ATL2}\", #{{category: 5, full_backup: true}})"
    ));
    assert!(
        err.contains("option 'category' must be a string, CMS or UserData, not int"),
        "{err}"
    );
}

#[test]
fn verify_names_the_items_that_differ_twenty_at_most_per_list() {
    let env = crate::common::Env::with_demo();
    let pool = crate::common::ATL2;
    env.demo(&format!("invoke_backup_service_sync(\"{pool}\")"));
    let data = env.store(pool).join("data/UserServices.PresenceFocus");
    let mut changed = Vec::new();
    for (i, entry) in walk(&data).into_iter().take(25).enumerate() {
        std::fs::write(&entry, format!("changed {i}")).unwrap();
        changed.push(entry.strip_prefix(&data).unwrap().display().to_string());
    }
    changed.sort();
    let code = format!("debug_inter_pool_replication(\"{pool}\", #{{module: \"PresenceFocus\"}})");
    let out = env.demo(&code).stdout();
    assert!(out.contains(&format!("{pool} -> ")), "{out}");
    assert!(out.contains(": 25 different:"), "{out}");
    assert!(
        out.contains(&format!("  {}\n", changed[0])),
        "the first item is named: {out}"
    );
    assert!(out.contains("  and 5 more"), "{out}");
    assert!(
        !out.contains(&changed[24]),
        "the 25th is not named in the table form"
    );
    let json = env
        .cmd()
        .args(["--demo", "--json", "-c", &code])
        .ok()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let different = v["modules"][0]["different"].as_array().unwrap();
    assert_eq!(different.len(), 25, "--json keeps the full list");
}

/// Every file below `dir`, sorted.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
