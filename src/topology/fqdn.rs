//! Fully qualified domain names of pools and computers.

use std::fmt;

use crate::printable::printable;

/// A validated, lower-cased fully qualified domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Fqdn(String);

impl Fqdn {
    /// Parses and validates `text`: letters, digits and hyphens in labels of at most
    /// 63 characters, no label starting or ending with a hyphen, at least two labels,
    /// 253 characters in all. Case-insensitive: the result is lower-case.
    pub fn parse(text: &str) -> Result<Fqdn, String> {
        let name = text.strip_suffix('.').unwrap_or(text);
        let shown = printable(text);
        if name.is_empty() {
            return Err("an FQDN cannot be empty".into());
        }
        if name.len() > 253 {
            return Err(format!(
                "'{shown}' is {} characters long; an FQDN has at most 253",
                name.len()
            ));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(format!(
                "'{shown}' is not fully qualified: it needs at least two labels, like pool.example.com"
            ));
        }
        for label in &labels {
            if label.is_empty() {
                return Err(format!("'{shown}' has an empty label"));
            }
            if label.len() > 63 {
                return Err(format!(
                    "'{shown}' has a label of {} characters; a label has at most 63",
                    label.len()
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(format!(
                    "'{shown}' contains '{}'; an FQDN holds only letters, digits, hyphens and dots",
                    printable(bad.to_string())
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!(
                    "'{shown}' has a label that starts or ends with a hyphen"
                ));
            }
        }
        Ok(Fqdn(name.to_ascii_lowercase()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Fqdn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Fqdn;

    #[test]
    fn accepts_and_lowercases() {
        assert_eq!(
            Fqdn::parse("ATL-CS-001.LitwareInc.com").unwrap().as_str(),
            "atl-cs-001.litwareinc.com"
        );
        assert_eq!(Fqdn::parse("a.b.").unwrap().as_str(), "a.b");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "single",
            "a..b",
            "-a.b",
            "a-.b",
            "a_b.c",
            "a b.c",
            &format!("{}.com", "x".repeat(64)),
            &format!("{}com", "abcdefghi.".repeat(26)),
        ] {
            assert!(Fqdn::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Fqdn::parse(&format!("{}.com", "x".repeat(63))).is_ok());
    }
}
