//! The Lua libraries Redis builds into its scripting engine besides the
//! standard ones: `bit` (LuaBitOp 1.0), `cjson` (lua-cjson 2.1) and
//! `cmsgpack` (lua-cmsgpack 0.4), written here in Rust with the same
//! results and error messages, checked against redis-server 7.0.
//!
//! They touch nothing but the Lua values they are given. The prelude makes
//! each table read-only, as Redis does.

use mlua::{Lua, MultiValue, Table, Value};

use super::{caller_where, plain};

mod bit;
mod cjson;
mod cmsgpack;

/// Nesting of tables the decoders and cjson's encoder go to at most,
/// whatever the settings say (lua-cjson and lua-cmsgpack stop where Lua's C
/// stack ends; recursion here must stop well before the thread's stack does).
const MAX_NESTING: u32 = 1000;

/// The three library tables, in `api`, for the prelude to install as globals.
pub fn install(lua: &Lua, api: &Table) -> mlua::Result<()> {
    api.set("bit", bit::table(lua)?)?;
    api.set("cjson", cjson::table(lua)?)?;
    api.set("cmsgpack", cmsgpack::table(lua)?)?;
    Ok(())
}

/// `luaL_typename` of a value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "no value",
    }
}

/// A Lua error raised as a C library raises it: the calling line, then the message.
fn fail(lua: &Lua, msg: &str) -> mlua::Error {
    plain(&format!("{}{msg}", caller_where(lua)))
}

/// `luaL_checknumber` for argument `n` (1-based) of `name`.
fn number(lua: &Lua, args: &MultiValue, n: usize, name: &str) -> mlua::Result<f64> {
    let v = args.get(n - 1).cloned().unwrap_or(Value::Nil);
    match lua.coerce_number(v.clone())? {
        Some(x) => Ok(x),
        None => {
            let got = if args.len() < n { "no value" } else { type_name(&v) };
            Err(fail(lua, &format!("bad argument #{n} to '{name}' (number expected, got {got})")))
        }
    }
}

/// The largest key and the number of keys of a table whose keys are all
/// positive integers (None if any is not).
fn positive_integer_keys(t: &Table) -> mlua::Result<Option<(usize, usize)>> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if k < 1.0 || k.floor() != k {
            return Ok(None);
        }
        max = max.max(k as usize);
        count += 1;
    }
    Ok(Some((max, count)))
}
