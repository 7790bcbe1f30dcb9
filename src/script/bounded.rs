//! Rhai's functions that make a large value from a small call (`pad`, `blob`),
//! registered again with the same results, so that a size the memory limit
//! cannot hold fails at once with the limit's message instead of an
//! allocation the process cannot survive. Registered functions are found
//! before the standard packages' of the same signature.

use rhai::{
    Array, Blob, Dynamic, Engine, EvalAltResult, FuncRegistration, INT, ImmutableString, Position,
};

use super::sandbox::Limits;

type Checked<T> = Result<T, Box<EvalAltResult>>;

/// The functions registered here: Rhai's own, with Rhai's documentation (no
/// help entry of poolsync's).
pub const SAME_AS_RHAI: &[&str] = &["pad", "blob"];

/// Refuses growing by `bytes` when the memory limit could not hold it (not
/// catchable, like the limit itself).
fn guard(limits: &Limits, what: &str, bytes: usize) -> Checked<()> {
    if limits.would_exceed(bytes) {
        return Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(format!("{what}: {}", limits.memory_message())),
            Position::NONE,
        )));
    }
    Ok(())
}

/// Heap bytes one copy of `value` takes, roughly (what the limit counts).
fn weight(value: &Dynamic) -> usize {
    let slot = std::mem::size_of::<Dynamic>();
    if let Some(a) = value.read_lock::<Array>() {
        return slot + a.iter().map(weight).sum::<usize>();
    }
    if let Some(m) = value.read_lock::<rhai::Map>() {
        return slot + m.iter().map(|(k, v)| k.len() + weight(v)).sum::<usize>();
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return slot + s.len();
    }
    if let Some(b) = value.read_lock::<Blob>() {
        return slot + b.len();
    }
    slot
}

/// A length argument as a count; a negative one is nothing.
fn count(len: INT) -> usize {
    usize::try_from(len).unwrap_or(0)
}

/// A registration with parameter names and types, as Rhai's own has them.
fn named(name: &str, params: &[&str]) -> FuncRegistration {
    FuncRegistration::new(name).with_params_info(params.iter().copied())
}

pub fn register(engine: &mut Engine, limits: &Limits) {
    register_array(engine, limits);
    register_blob(engine, limits);
    register_string(engine, limits);
}

/// `pad` of an array.
fn register_array(engine: &mut Engine, limits: &Limits) {
    let l = limits.clone();
    named(
        "pad",
        &["array: &mut Array", "len: INT", "item: Dynamic", "()"],
    )
    .register_into_engine(
        engine,
        move |array: &mut Array, len: INT, item: Dynamic| -> Checked<()> {
            let len = count(len);
            if len > array.len() {
                guard(&l, "pad", (len - array.len()).saturating_mul(weight(&item)))?;
                array.resize(len, item);
            }
            Ok(())
        },
    );
}

/// `pad` of a blob, and `blob(len)`, `blob(len, value)`.
fn register_blob(engine: &mut Engine, limits: &Limits) {
    let l = limits.clone();
    named("pad", &["blob: &mut Blob", "len: INT", "value: INT", "()"]).register_into_engine(
        engine,
        move |blob: &mut Blob, len: INT, value: INT| -> Checked<()> {
            let len = count(len);
            if len > blob.len() {
                guard(&l, "pad", len - blob.len())?;
                blob.resize(len, (value & 0xff) as u8);
            }
            Ok(())
        },
    );
    let l = limits.clone();
    named("blob", &["len: INT", "Blob"]).register_into_engine(
        engine,
        move |len: INT| -> Checked<Blob> {
            guard(&l, "blob", count(len))?;
            Ok(vec![0; count(len)])
        },
    );
    let l = limits.clone();
    named("blob", &["len: INT", "value: INT", "Blob"]).register_into_engine(
        engine,
        move |len: INT, value: INT| -> Checked<Blob> {
            guard(&l, "blob", count(len))?;
            Ok(vec![(value & 0xff) as u8; count(len)])
        },
    );
}

/// `pad` of a string, with a character or a padding text.
fn register_string(engine: &mut Engine, limits: &Limits) {
    let l = limits.clone();
    named(
        "pad",
        &[
            "string: &mut ImmutableString",
            "len: INT",
            "character: char",
            "()",
        ],
    )
    .register_into_engine(
        engine,
        move |s: &mut ImmutableString, len: INT, c: char| -> Checked<()> {
            let (len, have) = (count(len), s.chars().count());
            if len > have {
                guard(&l, "pad", (len - have).saturating_mul(c.len_utf8()))?;
                let p = s.make_mut();
                p.extend(std::iter::repeat_n(c, len - have));
            }
            Ok(())
        },
    );
    let l = limits.clone();
    named(
        "pad",
        &[
            "string: &mut ImmutableString",
            "len: INT",
            "padding: &str",
            "()",
        ],
    )
    .register_into_engine(
        engine,
        move |s: &mut ImmutableString, len: INT, padding: &str| -> Checked<()> {
            let (len, have) = (count(len), s.chars().count());
            if len > have && !padding.is_empty() {
                guard(&l, "pad", (len - have).saturating_mul(4))?;
                let p = s.make_mut();
                p.extend(padding.chars().cycle().take(len - have));
            }
            Ok(())
        },
    );
}
