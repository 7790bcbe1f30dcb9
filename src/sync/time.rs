//! Times as people read them: nanoseconds since the Unix epoch shown as
//! RFC 3339 (UTC, seconds), in text and in JSON, and read back.

/// Formats nanoseconds since the epoch as RFC 3339 (UTC, seconds).
#[must_use]
pub fn format_time(ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Serde for an optional time kept as nanoseconds: RFC 3339 text, or null.
pub(super) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    #[expect(
        clippy::ref_option,
        reason = "serde's `with` passes the field by reference"
    )]
    pub(crate) fn serialize<S: Serializer>(value: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(ns) => s.serialize_str(&super::format_time(*ns)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let t = humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)?;
        let ns = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(serde::de::Error::custom)?
            .as_nanos();
        Ok(Some(i64::try_from(ns).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct At {
        #[serde(with = "super::rfc3339")]
        at: Option<i64>,
    }

    #[test]
    fn a_time_reads_back_to_the_second() {
        let ns = 1_790_000_000_123_456_789;
        let json = serde_json::to_string(&At { at: Some(ns) }).unwrap();
        assert_eq!(json, r#"{"at":"2026-09-21T14:13:20Z"}"#);
        let back: At = serde_json::from_str(&json).unwrap();
        assert_eq!(back.at, Some(ns - ns % 1_000_000_000));
        let none: At = serde_json::from_str(r#"{"at":null}"#).unwrap();
        assert_eq!(none.at, None);
    }
}
