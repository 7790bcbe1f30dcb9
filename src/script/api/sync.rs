//! `invoke_backup_service_sync`: a thin binding over the sync engine.

use std::rc::Rc;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map};

use super::{FnResult, fail, func, interrupted};
use crate::script::ScriptContext;
use crate::script::options::{self, Value};
use crate::script::progress::SyncProgress;
use crate::script::types::{PoolObj, ReportObj};
use crate::sync::{SyncError, SyncOptions, SyncReport};
use crate::topology::ModuleSelection;

const FN: &str = options::SYNC.function;

/// Parsed options of one call.
#[derive(Default)]
struct CallOptions {
    sync: SyncOptions,
    force: bool,
}

fn parse_options(ctx: &ScriptContext, opts: &Map) -> FnResult<CallOptions> {
    let mut call = CallOptions::default();
    for (name, value) in options::SYNC.parse(opts)? {
        apply(&mut call, name, value)?;
    }
    call.sync.cancel = ctx.cancel.clone();
    Ok(call)
}

/// Reads one option of [`options::SYNC`], checked already.
fn apply(call: &mut CallOptions, name: &str, value: Value) -> FnResult<()> {
    match (name, value) {
        ("module", Value::String(text)) => {
            call.sync.modules =
                ModuleSelection::parse(&text).or_else(|e| fail(format!("{FN}: {e}")))?;
        }
        ("force", Value::Bool(on)) => call.force = on,
        ("what_if", Value::Bool(on)) => call.sync.what_if = on,
        ("allow_mass_delete", Value::Bool(on)) => call.sync.allow_mass_delete = on,
        (name, _) => return options::unhandled(FN, name),
    }
    Ok(())
}

fn target_name(value: &Dynamic) -> FnResult<String> {
    if let Some(p) = value.read_lock::<PoolObj>() {
        return Ok(p.fqdn.clone());
    }
    if value.is_string() {
        return Ok(value.clone().into_string().unwrap_or_default());
    }
    fail(format!(
        "{FN}: a target must be a pool FQDN or a Pool, not {}",
        super::kind(value)
    ))
}

fn report_warnings(report: &SyncReport, force: bool) {
    if !force {
        for w in &report.warnings {
            crate::errln!("warning: {w}");
        }
    }
}

fn run(ctx: &ScriptContext, targets: &[String], opts: &Map, single: bool) -> FnResult<Dynamic> {
    let CallOptions { mut sync, force } = parse_options(ctx, opts)?;
    // Every target is checked before any pool is touched: no partial runs.
    let pairs = targets
        .iter()
        .map(|t| super::pool::authorized_pair(ctx, "Invoke-CsBackupServiceSync", t))
        .collect::<FnResult<Vec<_>>>()?;
    let progress = Arc::new(SyncProgress::new(ctx.progress));
    sync.progress = Some(progress.clone());
    let results = ctx.block_on(ctx.sync.sync_many(&pairs, &sync));
    progress.finish();
    let mut reports = Array::new();
    let mut failures = Vec::new();
    let mut was_interrupted = false;
    for result in results {
        match result {
            Ok(report) => {
                report_warnings(&report, force);
                reports.push(Dynamic::from(ReportObj(report)));
            }
            Err(SyncError::Interrupted(report)) => {
                report_warnings(&report, force);
                was_interrupted = true;
            }
            Err(e) => {
                if let SyncError::Failed(report) = &e {
                    report_warnings(report, force);
                }
                failures.push(e.to_string());
            }
        }
    }
    if was_interrupted {
        return interrupted();
    }
    if !failures.is_empty() {
        return fail(failures.join("; "));
    }
    if single {
        Ok(reports.pop().unwrap_or(Dynamic::UNIT))
    } else {
        Ok(Dynamic::from_array(reports))
    }
}

fn targets_of(items: &Array) -> FnResult<Vec<String>> {
    items.iter().map(target_name).collect()
}

pub(super) fn register(engine: &mut Engine, ctx: &Rc<ScriptContext>) {
    let c = ctx.clone();
    func(FN, &["pool: &str", "SyncReport"]).register_into_engine(engine, move |p: &str| {
        run(&c, &[p.to_string()], &Map::new(), true)
    });
    let c = ctx.clone();
    func(FN, &["pool: &str", "opts: Map", "SyncReport"])
        .register_into_engine(engine, move |p: &str, o: Map| {
            run(&c, &[p.to_string()], &o, true)
        });
    let c = ctx.clone();
    func(FN, &["pool: Pool", "SyncReport"]).register_into_engine(engine, move |p: PoolObj| {
        run(&c, &[p.fqdn], &Map::new(), true)
    });
    let c = ctx.clone();
    func(FN, &["pool: Pool", "opts: Map", "SyncReport"])
        .register_into_engine(engine, move |p: PoolObj, o: Map| {
            run(&c, &[p.fqdn], &o, true)
        });
    let c = ctx.clone();
    func(FN, &["pools: Array", "Array"]).register_into_engine(engine, move |a: Array| {
        run(&c, &targets_of(&a)?, &Map::new(), false)
    });
    let c = ctx.clone();
    func(FN, &["pools: Array", "opts: Map", "Array"])
        .register_into_engine(engine, move |a: Array, o: Map| {
            run(&c, &targets_of(&a)?, &o, false)
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_option_is_read() {
        crate::script::options::assert_every_option_is_read(
            &crate::script::options::SYNC,
            super::apply,
        );
    }
}
