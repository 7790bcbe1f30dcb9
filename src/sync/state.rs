//! The Lync Backup Service states, per module and direction.

use std::fmt;

/// Export state of one module in one direction (Get-CsBackupServiceStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExportState {
    /// Nothing pending, and everything exported has been imported at the partner.
    FinalState,
    /// What is pending fits in one batch.
    SteadyState,
    /// A backlog: more is pending than one batch holds.
    NonSteadyState,
    /// No export has run yet (or `CMSMaster` away from the CMS pool).
    NotInitialized,
    /// The last export failed.
    ErrorState,
    /// Live status only (never recorded): a planned failover of the pool is
    /// shipping its last changes, with its writes stopped.
    FailingOver,
    /// Live status only: the pool's data is served at its backup pool; its
    /// exports are refused until it fails back.
    FailedOver,
    /// Live status only: a failback of the pool is under way (or stopped,
    /// to be run again); exports wait until it is home.
    FailingBack,
}

/// Import state of one module in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ImportState {
    NormalState,
    ErrorState,
    NotInitialized,
}

impl ExportState {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ExportState::FinalState => "FinalState",
            ExportState::SteadyState => "SteadyState",
            ExportState::NonSteadyState => "NonSteadyState",
            ExportState::NotInitialized => "NotInitialized",
            ExportState::ErrorState => "ErrorState",
            ExportState::FailingOver => "FailingOver",
            ExportState::FailedOver => "FailedOver",
            ExportState::FailingBack => "FailingBack",
        }
    }

    /// The state for a pending backlog, given how much one batch holds.
    #[must_use]
    pub fn for_pending(
        pending_items: u64,
        pending_bytes: u64,
        batch_items: u64,
        batch_bytes: u64,
    ) -> Self {
        if pending_items == 0 {
            ExportState::FinalState
        } else if pending_items <= batch_items && pending_bytes <= batch_bytes {
            ExportState::SteadyState
        } else {
            ExportState::NonSteadyState
        }
    }
}

impl ImportState {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ImportState::NormalState => "NormalState",
            ImportState::ErrorState => "ErrorState",
            ImportState::NotInitialized => "NotInitialized",
        }
    }
}

impl fmt::Display for ExportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ImportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
