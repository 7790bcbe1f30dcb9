//! What script functions share: the deployment, the sync engine, the runtime
//! they block on, and the interrupt flag.

use std::future::Future;
use std::sync::Arc;

use crate::rbac::Access;
use crate::sync::{CancelFlag, SyncEngine};
use crate::topology::Deployment;

pub struct ScriptContext {
    pub deployment: Arc<Deployment>,
    pub sync: Arc<SyncEngine>,
    /// Who runs the scripts and what they may do; every function asks it first.
    pub access: Access,
    runtime: tokio::runtime::Runtime,
    pub cancel: CancelFlag,
    /// Draw progress bars (stderr is a terminal).
    pub progress: bool,
}

impl ScriptContext {
    pub fn new(
        deployment: Arc<Deployment>,
        access: Access,
        cancel: CancelFlag,
        progress: bool,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("poolsync-io")
            .build()?;
        Ok(ScriptContext {
            sync: Arc::new(SyncEngine::new(deployment.clone())),
            access,
            deployment,
            runtime,
            cancel,
            progress,
        })
    }

    /// Runs async engine work from a (synchronous) script function.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}
