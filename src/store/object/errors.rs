//! How an object store's errors are worded: an item not found, access denied
//! (with what to check), an endpoint that cannot be reached, and otherwise the
//! first line of what the server said, without its XML body.

use super::ObjectBackedStore;
use crate::store::StoreError;

impl ObjectBackedStore {
    pub(super) fn other(&self, message: String) -> StoreError {
        StoreError::Other {
            store: self.desc.clone(),
            message,
        }
    }

    pub(super) fn backend_err(
        &self,
        action: &'static str,
        key: &str,
        e: object_store::Error,
    ) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                store: self.desc.clone(),
                path: key.to_string(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => self.access_denied(action, key, &e),
            e if matches!(http_status(&e), Some(401 | 403)) => self.access_denied(action, key, &e),
            e if unavailable(&e).is_some() => StoreError::Io {
                store: self.desc.clone(),
                action,
                path: key.to_string(),
                source: unavailable(&e).unwrap_or_else(|| std::io::Error::other(one_line(&e))),
            },
            e => self.other(format!("{action} '{key}': {}", one_line(&e))),
        }
    }

    fn access_denied(&self, action: &str, key: &str, e: &object_store::Error) -> StoreError {
        self.other(format!(
            "{action} '{key}': access denied: check the access key for this endpoint (s3_credentials file or AWS_ACCESS_KEY_ID) and its rights on the bucket (server said: {})",
            server_said(e)
        ))
    }
}

/// The HTTP status an error reports, if any (`object_store` keeps it only in the
/// message of most request errors).
pub(super) fn http_status(e: &object_store::Error) -> Option<u16> {
    let text = e.to_string();
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// The error of a server that could not be reached, or that kept failing
/// (5xx), after the retries: of kind `NotConnected`, which the engine takes
/// as a fault of the store itself (`Fault::Unavailable`), so the direction
/// stops at once instead of failing item after item, each after its own
/// retries. `None` for any other error.
pub(super) fn unavailable(e: &object_store::Error) -> Option<std::io::Error> {
    if let object_store::Error::Generic { source, .. } = e
        && let Some(not_tried) = source.downcast_ref::<super::breaker::NotTried>()
    {
        return Some(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            not_tried.to_string(),
        ));
    }
    let why = if is_unreachable(e) {
        "cannot reach the endpoint (is the server running, and the endpoint in deployment.toml right?)"
    } else if matches!(http_status(e), Some(500..=599)) {
        "the server kept failing (5xx) through the retries"
    } else {
        return None;
    };
    Some(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("{why}: {}", one_line(e)),
    ))
}

/// A connection that could not be made or broke, after the retries.
fn is_unreachable(e: &object_store::Error) -> bool {
    let text = e.to_string();
    text.contains("error sending request") || text.contains("onnection refused")
}

/// What the server said: the status and the S3 error code, without the body.
fn server_said(e: &object_store::Error) -> String {
    let text = e.to_string();
    let status = text.find("status code: ").map(|at| {
        text[at + 13..]
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    });
    let element = |name: &str| {
        let open = format!("<{name}>");
        text.find(&open).and_then(|at| {
            text[at + open.len()..]
                .split('<')
                .next()
                .map(str::to_string)
        })
    };
    let code = match (element("Code"), element("Message")) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    };
    match (status, code) {
        (Some(s), Some(c)) => format!("{s}, {c}"),
        (Some(s), None) => s,
        _ => one_line(e),
    }
}

/// The first line of an error, without the server's XML body.
fn one_line(e: &object_store::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    match line.find("<?xml") {
        Some(i) => line[..i].trim_end().to_string(),
        None => line.to_string(),
    }
}
