//! Where a pool's data is active, as `get_pool(P)` and
//! `get_backup_service_status(P)` show it: in text, in JSON, at the top level.

use crate::common::{ATL2, Env, RED1};

/// The value of `name : value` in printed text, its first occurrence.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l
            .split_once(" : ")
            .or_else(|| l.trim_end().strip_suffix(" :").map(|n| (n, "")))?;
        (n.trim() == name).then_some(v.trim())
    })
}

fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    text.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z'
}

#[test]
fn status_prints_the_failover_state_as_fields_and_never_failed_over_lost_nothing_unknown() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let text = env
        .demo(&format!("get_backup_service_status(\"{ATL2}\")"))
        .stdout();
    assert!(
        !text.contains("poolsync::") && !text.contains("Record<"),
        "a Rust type name instead of the value: {text}"
    );
    assert_eq!(field(&text, "failover"), Some(""), "{text}");
    assert_eq!(field(&text, "state"), Some("Home"), "{text}");
    assert_eq!(field(&text, "active_at"), Some(ATL2), "{text}");
    assert_eq!(field(&text, "epoch"), Some("0"), "{text}");
    assert_eq!(
        field(&text, "last_failover_items_lost"),
        Some(""),
        "a pool never failed over lost nothing known, not 0: {text}"
    );
    let json = env
        .cmd()
        .args(["--demo", "--json", "-c"])
        .arg(format!("get_backup_service_status(\"{ATL2}\")"))
        .ok()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["failover"]["state"], "Home");
    assert_eq!(
        v["failover"]["last_failover_items_lost"],
        serde_json::Value::Null
    );
}

#[test]
fn a_failed_over_pool_says_so_at_the_top_and_get_pool_shows_where_its_data_is() {
    let env = Env::with_demo();
    env.demo(&format!("invoke_backup_service_sync(\"{ATL2}\")"));
    let report = env
        .demo(&format!(
            "invoke_pool_failover(\"{ATL2}\", #{{disaster_mode: true}}).loss[0].last_sync"
        ))
        .stdout();
    assert!(is_rfc3339(report.trim()), "a readable time: {report}");

    let text = env
        .demo(&format!("get_backup_service_status(\"{ATL2}\")"))
        .stdout();
    assert_eq!(
        field(&text, "overall_export_status"),
        Some("FailedOver"),
        "{text}"
    );
    assert_eq!(field(&text, "state"), Some("FailedOver"), "{text}");
    assert_eq!(field(&text, "active_at"), Some(RED1), "{text}");
    assert_eq!(
        field(&text, "last_failover_mode"),
        Some("Disaster"),
        "{text}"
    );
    assert_eq!(
        field(&text, "last_failover_items_lost"),
        Some("0"),
        "{text}"
    );
    assert!(is_rfc3339(field(&text, "since").unwrap()), "{text}");
    let loss = env
        .demo(&format!(
            "get_backup_service_status(\"{ATL2}\").failover.last_failover_loss.map(|l| l.last_sync)"
        ))
        .stdout();
    assert!(
        loss.trim().lines().count() == 2 && loss.trim().lines().all(is_rfc3339),
        "readable times: {loss}"
    );
    assert!(
        text.contains("module                       last_sync"),
        "the loss as a table with readable times: {text}"
    );
    let modules: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("UserServices.") || l.starts_with("ConfServices."))
        .collect();
    assert!(
        modules.len() == 2 && modules.iter().all(|l| l.contains("FailedOver")),
        "each module the pool exports: {modules:?}"
    );

    let pool = env.demo(&format!("get_pool(\"{ATL2}\")")).stdout();
    let active = env.store(RED1).join("backup").join(ATL2);
    assert_eq!(
        field(&pool, "ActiveCopy"),
        Some(active.display().to_string().as_str()),
        "{pool}"
    );
    assert_eq!(field(&pool, "ActiveAt"), Some(RED1), "{pool}");
    let failover = field(&pool, "Failover").unwrap();
    assert!(
        failover.starts_with("FailedOver since ") && failover.ends_with("(epoch 1)"),
        "{pool}"
    );
    let json = env
        .cmd()
        .args(["--demo", "--json", "-c"])
        .arg(format!("get_pool(\"{ATL2}\")"))
        .ok()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["placement"]["state"], "FailedOver");
    assert_eq!(v["placement"]["active_at"], RED1);
}
