//! `cmsgpack`, as lua-cmsgpack 0.4: Lua values to MessagePack and back.

use mlua::{Lua, MultiValue, Table, Value};

use super::{fail, number, plain, positive_integer_keys, type_name, MAX_NESTING};

/// Nesting past which lua-cmsgpack writes nil.
const MSGPACK_MAX_NESTING: u32 = 16;

/// The `cmsgpack` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(fail(lua, "bad argument #0 to 'pack' (MessagePack pack needs input.)"));
            }
            let mut out = Vec::new();
            for v in &args {
                pack(v, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: Value| {
            let bytes = msgpack_input(lua, &s, "unpack")?;
            let mut at = 0;
            let mut out = Vec::new();
            while at < bytes.len() {
                out.push(unpack(lua, &bytes, &mut at, 0)?);
            }
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    for (name, limited) in [("unpack_one", false), ("unpack_limit", true)] {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let bytes = msgpack_input(lua, args.front().unwrap_or(&Value::Nil), name)?;
                let opt = |n: usize| -> mlua::Result<f64> {
                    if args.len() >= n && !matches!(args.get(n - 1), Some(Value::Nil)) {
                        number(lua, &args, n, name)
                    } else {
                        Ok(0.0)
                    }
                };
                // unpack_limit's limit is required (luaL_checkinteger), its offset and unpack_one's are not.
                let limit = if limited { number(lua, &args, 2, name)? as i64 } else { 1 };
                let offset = opt(if limited { 3 } else { 2 })? as i64;
                if offset < 0 || limit < 0 {
                    return Err(fail(lua, &format!("Invalid request to unpack with offset of {offset} and limit of {limit}.")));
                }
                if offset as usize > bytes.len() {
                    return Err(fail(lua, &format!("Start offset {offset} greater than input length {}.", bytes.len())));
                }
                let mut at = offset as usize;
                let mut out = vec![Value::Nil];
                // As lua-cmsgpack: a limit of 0 with offset 0 decodes everything and answers no offset.
                let all = limit == 0 && offset == 0;
                while at < bytes.len() && (all || (out.len() as i64) <= limit) {
                    out.push(unpack(lua, &bytes, &mut at, 0)?);
                }
                if all {
                    out.remove(0);
                    return Ok(MultiValue::from_iter(out));
                }
                out[0] = Value::Number(if at >= bytes.len() { -1.0 } else { at as f64 });
                Ok(MultiValue::from_iter(out))
            })?,
        )?;
    }
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

fn msgpack_input(lua: &Lua, v: &Value, name: &str) -> mlua::Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => Ok(lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()),
        other => Err(fail(lua, &format!("bad argument #1 to '{name}' (string expected, got {})", type_name(other)))),
    }
}

/// lua-cmsgpack's `table_is_an_array`: keys 1..n, every one there.
fn msgpack_array_len(t: &Table) -> mlua::Result<Option<usize>> {
    Ok(positive_integer_keys(t)?.and_then(|(max, count)| (max == count).then_some(count)))
}

fn pack_len(out: &mut Vec<u8>, n: usize, fix: Option<(u8, usize)>, tags: [u8; 3]) {
    match fix {
        Some((base, limit)) if n < limit => out.push(base | n as u8),
        _ if tags[0] != 0 && n <= 0xff => out.extend_from_slice(&[tags[0], n as u8]),
        _ if n <= 0xffff => {
            out.push(tags[1]);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(tags[2]);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn pack_number(x: f64, out: &mut Vec<u8>) {
    if x.floor() == x && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&x) {
        if x >= 0.0 {
            let u = x as u64;
            match u {
                0..=0x7f => out.push(u as u8),
                0x80..=0xff => out.extend_from_slice(&[0xcc, u as u8]),
                0x100..=0xffff => {
                    out.push(0xcd);
                    out.extend_from_slice(&(u as u16).to_be_bytes());
                }
                0x1_0000..=0xffff_ffff => {
                    out.push(0xce);
                    out.extend_from_slice(&(u as u32).to_be_bytes());
                }
                _ => {
                    out.push(0xcf);
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
        } else {
            let i = x as i64;
            match i {
                -32..=-1 => out.push(i as i8 as u8),
                -128..=-33 => out.extend_from_slice(&[0xd0, i as i8 as u8]),
                -32768..=-129 => {
                    out.push(0xd1);
                    out.extend_from_slice(&(i as i16).to_be_bytes());
                }
                -2147483648..=-32769 => {
                    out.push(0xd2);
                    out.extend_from_slice(&(i as i32).to_be_bytes());
                }
                _ => {
                    out.push(0xd3);
                    out.extend_from_slice(&i.to_be_bytes());
                }
            }
        }
    } else if (x as f32) as f64 == x {
        out.push(0xca);
        out.extend_from_slice(&(x as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&x.to_be_bytes());
    }
}

fn pack(v: &Value, depth: u32, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_number(*i as f64, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => {
            let b = s.as_bytes();
            pack_len(out, b.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MSGPACK_MAX_NESTING => match msgpack_array_len(t)? {
            Some(n) => {
                pack_len(out, n, Some((0x90, 16)), [0, 0xdc, 0xdd]);
                for i in 1..=n {
                    pack(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
                pack_len(out, pairs.len(), Some((0x80, 16)), [0, 0xde, 0xdf]);
                for (k, val) in &pairs {
                    pack(k, depth + 1, out)?;
                    pack(val, depth + 1, out)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

fn unpack(lua: &Lua, b: &[u8], at: &mut usize, depth: u32) -> mlua::Result<Value> {
    if depth > MAX_NESTING {
        return Err(fail(lua, "stack overflow (in function mp_decode_to_lua_array)"));
    }
    let missing = || fail(lua, "Missing bytes in input.");
    let take = |at: &mut usize, n: usize| -> mlua::Result<&[u8]> {
        let s = b.get(*at..*at + n).ok_or_else(missing)?;
        *at += n;
        Ok(s)
    };
    let be = |s: &[u8]| s.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
    let tag = take(at, 1)?[0];
    let num = |v: f64| Ok(Value::Number(v));
    match tag {
        0x00..=0x7f => num(tag as f64),
        0xe0..=0xff => num(tag as i8 as f64),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xcc => num(be(take(at, 1)?) as f64),
        0xcd => num(be(take(at, 2)?) as f64),
        0xce => num(be(take(at, 4)?) as f64),
        0xcf => num(be(take(at, 8)?) as f64),
        0xd0 => num(be(take(at, 1)?) as u8 as i8 as f64),
        0xd1 => num(be(take(at, 2)?) as u16 as i16 as f64),
        0xd2 => num(be(take(at, 4)?) as u32 as i32 as f64),
        0xd3 => num(be(take(at, 8)?) as i64 as f64),
        0xca => num(f32::from_bits(be(take(at, 4)?) as u32) as f64),
        0xcb => num(f64::from_bits(be(take(at, 8)?))),
        0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
            let n = match tag {
                0xd9 => be(take(at, 1)?) as usize,
                0xda => be(take(at, 2)?) as usize,
                0xdb => be(take(at, 4)?) as usize,
                _ => (tag & 0x1f) as usize,
            };
            Ok(Value::String(lua.create_string(take(at, n)?)?))
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match tag {
                0xdc => be(take(at, 2)?) as usize,
                0xdd => be(take(at, 4)?) as usize,
                _ => (tag & 0x0f) as usize,
            };
            let t = lua.create_table()?;
            for i in 1..=n {
                t.raw_set(i, unpack(lua, b, at, depth + 1)?)?;
            }
            Ok(Value::Table(t))
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match tag {
                0xde => be(take(at, 2)?) as usize,
                0xdf => be(take(at, 4)?) as usize,
                _ => (tag & 0x0f) as usize,
            };
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = unpack(lua, b, at, depth + 1)?;
                let v = unpack(lua, b, at, depth + 1)?;
                if matches!(k, Value::Nil) {
                    return Err(plain("table index is nil"));
                }
                t.raw_set(k, v)?;
            }
            Ok(Value::Table(t))
        }
        _ => Err(fail(lua, "Bad data format in input.")),
    }
}
