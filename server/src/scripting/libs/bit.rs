//! `bit`, as LuaBitOp 1.0: 32-bit operations on Lua numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::number;

/// LuaBitOp's conversion of a Lua number to 32 bits: add 2^52 + 2^51 and
/// take the low word (rounds to nearest, wraps modulo 2^32).
fn tobit(x: f64) -> i32 {
    (x + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

/// The `bit` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary = |name: &'static str, f: fn(i32) -> i32| -> mlua::Result<()> {
        t.set(name, lua.create_function(move |lua, args: MultiValue| Ok(f(tobit(number(lua, &args, 1, name)?)) as f64))?)
    };
    unary("tobit", |x| x)?;
    unary("bnot", |x| !x)?;
    unary("bswap", i32::swap_bytes)?;
    let fold = |name: &'static str, f: fn(i32, i32) -> i32| -> mlua::Result<()> {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let mut acc = tobit(number(lua, &args, 1, name)?);
                for n in 2..=args.len() {
                    acc = f(acc, tobit(number(lua, &args, n, name)?));
                }
                Ok(acc as f64)
            })?,
        )
    };
    fold("band", |a, b| a & b)?;
    fold("bor", |a, b| a | b)?;
    fold("bxor", |a, b| a ^ b)?;
    let shift = |name: &'static str, f: fn(i32, u32) -> i32| -> mlua::Result<()> {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let x = tobit(number(lua, &args, 1, name)?);
                let n = tobit(number(lua, &args, 2, name)?) as u32 & 31;
                Ok(f(x, n) as f64)
            })?,
        )
    };
    shift("lshift", |x, n| ((x as u32) << n) as i32)?;
    shift("rshift", |x, n| ((x as u32) >> n) as i32)?;
    shift("arshift", |x, n| x >> n)?;
    shift("rol", |x, n| (x as u32).rotate_left(n) as i32)?;
    shift("ror", |x, n| (x as u32).rotate_right(n) as i32)?;
    t.set(
        "tohex",
        lua.create_function(|lua, args: MultiValue| {
            let x = tobit(number(lua, &args, 1, "tohex")?) as u32;
            let n = if args.len() >= 2 && !matches!(args.get(1), Some(Value::Nil)) { tobit(number(lua, &args, 2, "tohex")?) } else { 8 };
            let (upper, n) = (n < 0, n.unsigned_abs().min(8) as usize);
            let hex = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(hex[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}
