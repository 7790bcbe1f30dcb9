//! to_json and help.

use rhai::{Dynamic, Engine};

use super::{FnResult, fail, func};
use crate::script::{help, render};

fn help_for(name: &str) -> FnResult<String> {
    match help::find(name) {
        Some(doc) => Ok(help::render(doc)),
        None => fail(format!("no help for '{name}': help() lists the functions")),
    }
}

pub fn register(engine: &mut Engine) {
    func("to_json", &["value: Dynamic", "String"]).register_into_engine(engine, |v: Dynamic| {
        serde_json::to_string_pretty(&render::to_json(&v)).unwrap_or_default()
    });
    func("help", &["String"]).register_into_engine(engine, help::overview);
    func("help", &["name: &str", "String"]).register_into_engine(engine, help_for);
}
