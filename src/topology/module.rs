//! The three Backup Service modules and their names.

use crate::printable::printable;
use std::fmt;

/// A Backup Service module: one kind of data a pool exports to its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Module {
    #[serde(rename = "UserServices.PresenceFocus")]
    PresenceFocus,
    #[serde(rename = "ConfServices.DataConf")]
    DataConf,
    #[serde(rename = "CentralMgmt.CMSMaster")]
    CmsMaster,
}

/// Which modules an operation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSelection {
    All,
    One(Module),
}

/// The category a module belongs to, as `Get-CsBackupServiceStatus -Category` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    UserData,
    Cms,
}

impl Module {
    pub const ALL: [Module; 3] = [Module::PresenceFocus, Module::DataConf, Module::CmsMaster];

    /// The full identity, e.g. `UserServices.PresenceFocus`; also the folder name in a store.
    #[must_use]
    pub fn identity(self) -> &'static str {
        match self {
            Module::PresenceFocus => "UserServices.PresenceFocus",
            Module::DataConf => "ConfServices.DataConf",
            Module::CmsMaster => "CentralMgmt.CMSMaster",
        }
    }

    /// The short name used in Microsoft's docs, e.g. `PresenceFocus`.
    #[must_use]
    pub fn short_name(self) -> &'static str {
        match self {
            Module::PresenceFocus => "PresenceFocus",
            Module::DataConf => "DataConf",
            Module::CmsMaster => "CMSMaster",
        }
    }

    #[must_use]
    pub fn category(self) -> Category {
        match self {
            Module::CmsMaster => Category::Cms,
            _ => Category::UserData,
        }
    }

    /// Finds a module by identity or short name, case-insensitively.
    #[must_use]
    pub fn parse(text: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| {
            m.identity().eq_ignore_ascii_case(text) || m.short_name().eq_ignore_ascii_case(text)
        })
    }
}

impl ModuleSelection {
    /// Parses a module name or `All`; the error lists the valid names.
    pub fn parse(text: &str) -> Result<ModuleSelection, String> {
        if text.eq_ignore_ascii_case("all") {
            return Ok(ModuleSelection::All);
        }
        Module::parse(text).map(ModuleSelection::One).ok_or_else(|| {
            format!(
                "unknown module '{}': use one of UserServices.PresenceFocus, ConfServices.DataConf, CentralMgmt.CMSMaster (or PresenceFocus, DataConf, CMSMaster), or All",
                printable(text)
            )
        })
    }

    #[must_use]
    pub fn includes(self, module: Module) -> bool {
        match self {
            ModuleSelection::All => true,
            ModuleSelection::One(m) => m == module,
        }
    }
}

impl Category {
    pub fn parse(text: &str) -> Result<Category, String> {
        if text.eq_ignore_ascii_case("userdata") {
            Ok(Category::UserData)
        } else if text.eq_ignore_ascii_case("cms") {
            Ok(Category::Cms)
        } else {
            Err(format!(
                "unknown category '{}': use UserData or CMS",
                printable(text)
            ))
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.identity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_spellings() {
        assert_eq!(Module::parse("presencefocus"), Some(Module::PresenceFocus));
        assert_eq!(
            Module::parse("ConfServices.DataConf"),
            Some(Module::DataConf)
        );
        assert_eq!(Module::parse("CMSMASTER"), Some(Module::CmsMaster));
        assert_eq!(Module::parse("Data"), None);
        assert_eq!(ModuleSelection::parse("ALL"), Ok(ModuleSelection::All));
        assert!(
            ModuleSelection::parse("x")
                .unwrap_err()
                .contains("unknown module 'x'")
        );
    }
}
