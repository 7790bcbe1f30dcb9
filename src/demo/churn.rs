//! `poolsync demo churn`: change, add and delete a deterministic share of a pool's
//! items, the way live users would, so the next sync has real work.

use std::path::{Path, PathBuf};

use super::data::{self, below};
use super::{USERS_PER_POOL, write};
use crate::error::Error;
use crate::topology::{Deployment, Module, Pool};

/// What one churn did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChurnSummary {
    pub pool: String,
    pub round: u64,
    pub modified: u64,
    pub added: u64,
    pub deleted: u64,
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Where a churn writes one module: the folder that holds the pool's active
/// module folders (its own `data/`, or its replica folder at the partner
/// while it is failed over), the file that counts its rounds, and what keeps
/// that folder the active one while the module is written (dropped after).
pub struct ChurnTarget {
    pub folder: PathBuf,
    pub round_file: PathBuf,
    pub hold: Option<Box<dyn std::any::Any>>,
}

/// Changes `percent`% of each module's items of `pool`: half of that share
/// is modified, a quarter added, a quarter deleted (at least one of each when
/// the share is above zero). Successive calls differ; the sequence is
/// deterministic. `target` says, for each module in turn, where the pool's
/// data is active and holds it there while the module is written: a churn
/// follows the data when it moves between modules, and stops (with what it
/// did so far in the error) when writes are stopped.
pub fn churn(
    deployment: &Deployment,
    pool: &Pool,
    percent: f64,
    target: &mut dyn FnMut() -> Result<ChurnTarget, Error>,
) -> Result<ChurnSummary, Error> {
    if !(0.0..=100.0).contains(&percent) || percent.is_nan() {
        return Err(Error::Usage(format!(
            "--percent {percent} is out of range: give a number from 0 to 100"
        )));
    }
    let mut summary = ChurnSummary {
        pool: pool.fqdn.to_string(),
        ..ChurnSummary::default()
    };
    let mut round_file = None;
    for module in deployment.modules_of(pool) {
        let t = match target() {
            Ok(t) => t,
            Err(e) if round_file.is_some() => {
                return Err(Error::Other(format!(
                    "{e}; round {} stopped there, after {} modified, {} added, {} deleted",
                    summary.round, summary.modified, summary.added, summary.deleted
                )));
            }
            Err(e) => return Err(e),
        };
        if round_file.is_none() {
            summary.round = read_round(&t.round_file) + 1;
            // The round counts once begun, so a stopped one is not repeated.
            write(&t.round_file, summary.round.to_string().as_bytes())?;
        }
        round_file = Some(t.round_file.clone());
        let dir = t.folder.join(module.identity());
        churn_module(pool, module, &dir, percent, summary.round, &mut summary)?;
    }
    Ok(summary)
}

fn read_round(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// One module's share of a churn round.
fn churn_module(
    pool: &Pool,
    module: Module,
    dir: &Path,
    percent: f64,
    round: u64,
    summary: &mut ChurnSummary,
) -> Result<(), Error> {
    let name = pool.fqdn.as_str();
    let files = files_below(dir);
    let share = files.len() as f64 * percent / 100.0;
    if share <= 0.0 {
        return Ok(());
    }
    let modify = (share / 2.0).ceil() as u64;
    let add = (share / 4.0).ceil() as u64;
    let delete = (share / 4.0).ceil() as u64;
    let mut r = data::rng(name, &format!("churn-{}", module.identity()), round);
    let mut chosen: Vec<usize> = Vec::new();
    while (chosen.len() as u64) < (modify + delete).min(files.len() as u64) {
        let i = below(&mut r, files.len() as u64) as usize;
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    for (k, &i) in chosen.iter().enumerate() {
        let path = &files[i];
        if (k as u64) < modify {
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let body = if module == Module::PresenceFocus {
                modified_user(path, round, &mut r)
            } else {
                let old = std::fs::metadata(path).map_or(4096, |m| m.len());
                // Half keep their size: change detection must not rely on it.
                let size = if k % 2 == 0 {
                    old
                } else {
                    old + 1 + below(&mut r, 4096)
                };
                data::content_bytes(name, &rel, round, size)
            };
            write(path, &body)?;
            summary.modified += 1;
        } else {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            summary.deleted += 1;
        }
    }
    for k in 0..add {
        let (rel, body) = added_item(name, module, round, k);
        write(&dir.join(rel), &body)?;
        summary.added += 1;
    }
    Ok(())
}

/// The `k`th item a churn round adds to a module.
fn added_item(name: &str, module: Module, round: u64, k: u64) -> (String, Vec<u8>) {
    match module {
        Module::PresenceFocus => {
            let index = USERS_PER_POOL + round * 100_000 + k;
            (
                data::user_path(name, index),
                data::user_document(name, index, 0, USERS_PER_POOL),
            )
        }
        Module::DataConf => {
            let (p, size) = data::conference_file(name, 1000 + round * 1000 + k, 0);
            let body = data::content_bytes(name, &p, 0, size.min(512 * 1024));
            (p, body)
        }
        Module::CmsMaster => (
            format!("config/change-{round}-{k}.xml"),
            format!("<Change Round=\"{round}\" Index=\"{k}\"/>\n").into_bytes(),
        ),
    }
}

fn modified_user(path: &Path, round: u64, r: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
    let states = ["Online", "Away", "Busy", "Offline"];
    let mut doc: serde_json::Value = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("revision".into(), round.into());
        obj.insert(
            "presence".into(),
            serde_json::json!({
                "state": states[below(r, 4) as usize],
                "note": format!("changed in round {round}"),
            }),
        );
    }
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}
