//! `cjson`, as lua-cjson 2.1: Lua values to JSON and back, `cjson.null`,
//! and the settings its `encode_*` and `decode_*` functions change.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{fail, number, positive_integer_keys, type_name, MAX_NESTING};
use crate::scripting::format_g;

/// lua-cjson's settings (its `cjson.encode_*` / `decode_*` functions change them).
#[derive(Clone, Copy)]
struct JsonConfig {
    sparse_convert: bool,
    sparse_ratio: u32,
    sparse_safe: u32,
    encode_max_depth: u32,
    decode_max_depth: u32,
    precision: u32,
    keep_buffer: bool,
    /// 0: refuse NaN and infinities; 1: write them as `nan`/`inf`; 2: write `null`.
    encode_invalid: u8,
    decode_invalid: bool,
}

impl Default for JsonConfig {
    fn default() -> JsonConfig {
        JsonConfig {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            keep_buffer: true,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

/// `cjson.null`: a light userdata holding NULL, as in lua-cjson.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// The `cjson` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let cfg = Rc::new(Cell::new(JsonConfig::default()));
    let c = cfg.clone();
    t.set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(fail(lua, "bad argument #1 to 'encode' (expected 1 argument)"));
            }
            let mut out = Vec::new();
            encode_json(lua, &c.get(), args.front().unwrap_or(&Value::Nil), 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(fail(lua, "bad argument #1 to 'decode' (expected 1 argument)"));
            }
            let text = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(v @ (Value::Integer(_) | Value::Number(_))) => {
                    lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
                }
                Some(v) => return Err(fail(lua, &format!("bad argument #1 to 'decode' (string expected, got {})", type_name(v)))),
                None => Vec::new(),
            };
            let mut p = JsonParser { lua, text: &text, at: 0, depth: 0, cfg: c.get(), err_at: None };
            p.document()
        })?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    settings(lua, &t, &cfg)?;
    Ok(t)
}

/// The `cjson.encode_*` and `decode_*` settings: each sets when given
/// arguments and answers the current values.
fn settings(lua: &Lua, t: &Table, cfg: &Rc<Cell<JsonConfig>>) -> mlua::Result<()> {
    type Setter = fn(&Lua, &MultiValue, &mut JsonConfig) -> mlua::Result<MultiValue>;
    let setters: [(&str, Setter); 7] = [
        ("encode_max_depth", |lua, args, c| {
            if let Some(n) = depth_arg(lua, args, "encode_max_depth")? {
                c.encode_max_depth = n;
            }
            Ok(MultiValue::from_iter([Value::Number(c.encode_max_depth as f64)]))
        }),
        ("decode_max_depth", |lua, args, c| {
            if let Some(n) = depth_arg(lua, args, "decode_max_depth")? {
                c.decode_max_depth = n;
            }
            Ok(MultiValue::from_iter([Value::Number(c.decode_max_depth as f64)]))
        }),
        ("encode_number_precision", |lua, args, c| {
            if !args.is_empty() && !matches!(args.front(), Some(Value::Nil)) {
                let n = number(lua, args, 1, "encode_number_precision")?;
                if !(1.0..=14.0).contains(&n) {
                    return Err(fail(lua, "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"));
                }
                c.precision = n as u32;
            }
            Ok(MultiValue::from_iter([Value::Number(c.precision as f64)]))
        }),
        ("encode_sparse_array", |lua, args, c| {
            if let Some(b) = bool_arg(args, 0) {
                c.sparse_convert = b;
            }
            for (i, slot) in [(1, &mut c.sparse_ratio), (2, &mut c.sparse_safe)] {
                if matches!(args.get(i), Some(Value::Integer(_) | Value::Number(_))) {
                    let n = number(lua, args, i + 1, "encode_sparse_array")?;
                    if !(0.0..=2147483647.0).contains(&n) {
                        return Err(fail(
                            lua,
                            &format!("bad argument #{} to 'encode_sparse_array' (expected integer between 0 and 2147483647)", i + 1),
                        ));
                    }
                    *slot = n as u32;
                }
            }
            Ok(MultiValue::from_iter([
                Value::Boolean(c.sparse_convert),
                Value::Number(c.sparse_ratio as f64),
                Value::Number(c.sparse_safe as f64),
            ]))
        }),
        ("encode_keep_buffer", |_, args, c| {
            if let Some(b) = bool_arg(args, 0) {
                c.keep_buffer = b;
            }
            Ok(MultiValue::from_iter([Value::Boolean(c.keep_buffer)]))
        }),
        ("encode_invalid_numbers", |lua, args, c| {
            match args.front() {
                Some(Value::String(s)) if s.as_bytes() == b"null" => c.encode_invalid = 2,
                _ => {
                    if let Some(b) = bool_arg(args, 0) {
                        c.encode_invalid = b as u8;
                    }
                }
            }
            let v = match c.encode_invalid {
                2 => Value::String(lua.create_string("null")?),
                n => Value::Boolean(n == 1),
            };
            Ok(MultiValue::from_iter([v]))
        }),
        ("decode_invalid_numbers", |_, args, c| {
            if let Some(b) = bool_arg(args, 0) {
                c.decode_invalid = b;
            }
            Ok(MultiValue::from_iter([Value::Boolean(c.decode_invalid)]))
        }),
    ];
    for (name, set) in setters {
        let cfg = cfg.clone();
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let mut c = cfg.get();
                let out = set(lua, &args, &mut c)?;
                cfg.set(c);
                Ok(out)
            })?,
        )?;
    }
    Ok(())
}

/// A maximum depth argument (None: not given).
fn depth_arg(lua: &Lua, args: &MultiValue, name: &str) -> mlua::Result<Option<u32>> {
    if args.is_empty() || matches!(args.front(), Some(Value::Nil)) {
        return Ok(None);
    }
    let n = number(lua, args, 1, name)?;
    if !(1.0..=2147483647.0).contains(&n) {
        return Err(fail(lua, &format!("bad argument #1 to '{name}' (expected integer between 1 and 2147483647)")));
    }
    Ok(Some(n as u32))
}

/// A boolean setting argument: true/false or "on"/"off" (None: not given).
fn bool_arg(args: &MultiValue, i: usize) -> Option<bool> {
    match args.get(i) {
        Some(Value::Boolean(b)) => Some(*b),
        Some(Value::String(s)) if s.as_bytes() == b"on" => Some(true),
        Some(Value::String(s)) if s.as_bytes() == b"off" => Some(false),
        _ => None,
    }
}

/// A number as lua-cjson writes it (`%.14g` by default).
fn json_number(lua: &Lua, cfg: &JsonConfig, x: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !x.is_finite() {
        match cfg.encode_invalid {
            0 => return Err(fail(lua, "Cannot serialise number: must not be NaN or Inf")),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    // Redis's lua-cjson writes NaN as `nan` whatever its sign bit.
    let text = if x.is_nan() { "nan".to_string() } else { format_g(x, cfg.precision as usize) };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// A string with lua-cjson's escapes (`/` included).
fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            8 => out.extend_from_slice(b"\\b"),
            9 => out.extend_from_slice(b"\\t"),
            10 => out.extend_from_slice(b"\\n"),
            12 => out.extend_from_slice(b"\\f"),
            13 => out.extend_from_slice(b"\\r"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// lua-cjson's `lua_array_length`: Some(n) for an array of n slots, None for an object.
fn array_length(lua: &Lua, cfg: &JsonConfig, t: &Table) -> mlua::Result<Option<usize>> {
    let Some((max, items)) = positive_integer_keys(t)? else { return Ok(None) };
    let sparse = cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio as usize && max > cfg.sparse_safe as usize;
    // Whatever the settings, not millions of nulls for a few values (lua-cjson would write them until memory ran out).
    let absurd = max > items.saturating_mul(16).saturating_add(1 << 20);
    if sparse || absurd {
        if !cfg.sparse_convert {
            return Err(fail(lua, "Cannot serialise table: excessively sparse array"));
        }
        return Ok(None);
    }
    Ok(Some(max))
}

fn encode_json(lua: &Lua, cfg: &JsonConfig, v: &Value, depth: u32, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => json_number(lua, cfg, *i as f64, out)?,
        Value::Number(n) => json_number(lua, cfg, *n, out)?,
        Value::String(s) => json_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth.min(MAX_NESTING) {
                return Err(fail(lua, &format!("Cannot serialise, excessive nesting ({depth})")));
            }
            match array_length(lua, cfg, t)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode_json(lua, cfg, &t.raw_get::<Value>(i)?, depth, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.clone().pairs::<Value, Value>() {
                        let (k, val) = pair?;
                        if !std::mem::take(&mut first) {
                            out.push(b',');
                        }
                        match &k {
                            Value::String(s) => json_string(&s.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                json_number(lua, cfg, lua.coerce_number(k.clone())?.unwrap_or(0.0), out)?;
                                out.push(b'"');
                            }
                            other => {
                                let msg = format!("Cannot serialise {}: table key must be a number or string", type_name(other));
                                return Err(fail(lua, &msg));
                            }
                        }
                        out.push(b':');
                        encode_json(lua, cfg, &val, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(fail(lua, &format!("Cannot serialise {}: type not supported", type_name(other)))),
    }
    Ok(())
}

/// A token of lua-cjson's lexer: what it is (its name in error messages) and where it starts.
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// An invalid token and what is wrong with it.
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Num(_) => "T_NUMBER",
            Token::Bool(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

/// A JSON text being decoded into Lua values, as lua-cjson does.
struct JsonParser<'a> {
    lua: &'a Lua,
    text: &'a [u8],
    at: usize,
    depth: u32,
    cfg: JsonConfig,
    /// Where a string's error is, when that is not where the string starts.
    err_at: Option<usize>,
}

impl JsonParser<'_> {
    fn document(&mut self) -> mlua::Result<Value> {
        let (t, at) = self.next();
        let v = self.value(t, at)?;
        let (t, at) = self.next();
        if !matches!(t, Token::End) {
            return Err(self.expected("the end", &t, at));
        }
        Ok(v)
    }

    fn expected(&self, what: &str, found: &Token, at: usize) -> mlua::Error {
        fail(self.lua, &format!("Expected {what} but found {} at character {}", found.name(), at + 1))
    }

    fn value(&mut self, t: Token, at: usize) -> mlua::Result<Value> {
        Ok(match t {
            Token::Str(s) => Value::String(self.lua.create_string(&s)?),
            Token::Num(n) => Value::Number(n),
            Token::Bool(b) => Value::Boolean(b),
            Token::Null => null(),
            Token::ObjBegin => self.object(at)?,
            Token::ArrBegin => self.array(at)?,
            other => return Err(self.expected("value", &other, at)),
        })
    }

    fn nest(&mut self, at: usize) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth.min(MAX_NESTING) {
            return Err(fail(self.lua, &format!("Found too many nested data structures ({}) at character {}", self.depth, at + 1)));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> mlua::Result<Value> {
        self.nest(at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at) = self.next();
        if matches!(tok, Token::ObjEnd) {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            let Token::Str(key) = tok else { return Err(self.expected("object key string", &tok, at)) };
            let (colon, cat) = self.next();
            if !matches!(colon, Token::Colon) {
                return Err(self.expected("colon", &colon, cat));
            }
            let (vt, vat) = self.next();
            let v = self.value(vt, vat)?;
            t.raw_set(self.lua.create_string(&key)?, v)?;
            let (sep, sat) = self.next();
            match sep {
                Token::ObjEnd => break,
                Token::Comma => (tok, at) = self.next(),
                other => return Err(self.expected("comma or object end", &other, sat)),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> mlua::Result<Value> {
        self.nest(at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at) = self.next();
        if matches!(tok, Token::ArrEnd) {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        for i in 1.. {
            let v = self.value(tok, at)?;
            t.raw_set(i, v)?;
            let (sep, sat) = self.next();
            match sep {
                Token::ArrEnd => break,
                Token::Comma => (tok, at) = self.next(),
                other => return Err(self.expected("comma or array end", &other, sat)),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    /// The next token and where it starts.
    fn next(&mut self) -> (Token, usize) {
        while self.text.get(self.at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
        let at = self.at;
        let Some(&b) = self.text.get(at) else { return (Token::End, at) };
        let one = |t: Token, p: &mut Self| {
            p.at += 1;
            t
        };
        let tok = match b {
            b'{' => one(Token::ObjBegin, self),
            b'}' => one(Token::ObjEnd, self),
            b'[' => one(Token::ArrBegin, self),
            b']' => one(Token::ArrEnd, self),
            b':' => one(Token::Colon, self),
            b',' => one(Token::Comma, self),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.word(),
        };
        (tok, self.err_at.take().unwrap_or(at))
    }

    fn word(&mut self) -> Token {
        let rest = &self.text[self.at..];
        let lower: Vec<u8> = rest.iter().take(9).map(u8::to_ascii_lowercase).collect();
        for (w, t) in [(&b"true"[..], Token::Bool(true)), (b"false", Token::Bool(false)), (b"null", Token::Null)] {
            if rest.starts_with(w) {
                self.at += w.len();
                return t;
            }
        }
        if self.cfg.decode_invalid {
            for (w, v) in [(&b"infinity"[..], f64::INFINITY), (b"inf", f64::INFINITY), (b"nan", f64::NAN)] {
                if lower.starts_with(w) {
                    self.at += w.len();
                    return Token::Num(v);
                }
            }
        }
        Token::Error("invalid token")
    }

    fn number(&mut self) -> Token {
        let start = self.at;
        let t = self.text;
        let mut i = start;
        if t.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while t.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        if !digits(&mut i) {
            let rest = &t[i..];
            if self.cfg.decode_invalid && rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"inf") {
                self.at = i;
                return match self.word() {
                    Token::Num(v) => Token::Num(-v),
                    other => other,
                };
            }
            return Token::Error("invalid number");
        }
        // As strtod reads it: leading zeros, a bare trailing dot, an exponent only with digits.
        if t.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
        if matches!(t.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(t.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if digits(&mut j) {
                i = j;
            }
        }
        self.at = i;
        match std::str::from_utf8(&t[start..i]).ok().and_then(|s| s.parse::<f64>().ok()) {
            Some(v) => Token::Num(v),
            None => Token::Error("invalid number"),
        }
    }

    fn string(&mut self) -> Token {
        let t = self.text;
        let mut i = self.at + 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = t.get(i) else {
                self.err_at = Some(i);
                return Token::Error("unexpected end of string");
            };
            i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    self.err_at = Some(i - 1);
                    let Some(&e) = t.get(i) else { return Token::Error("unexpected end of string") };
                    i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => match unicode_escape(t, &mut i) {
                            Some(c) => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            }
                            None => return Token::Error("invalid unicode escape code"),
                        },
                        _ => return Token::Error("invalid escape code"),
                    }
                    self.err_at = None;
                }
                _ => out.push(b),
            }
        }
        self.at = i;
        Token::Str(out)
    }
}

/// The character of a `\uXXXX` escape (a surrogate pair takes two); `i` is just past the `u`.
fn unicode_escape(t: &[u8], i: &mut usize) -> Option<char> {
    let hex4 = |at: usize| -> Option<u32> {
        let digits = t.get(at..at + 4)?;
        digits.iter().all(u8::is_ascii_hexdigit).then(|| digits.iter().fold(0, |v, &d| (v << 4) | (d as char).to_digit(16).unwrap_or(0)))
    };
    let hi = hex4(*i)?;
    *i += 4;
    if (0xd800..0xdc00).contains(&hi) {
        if t.get(*i..*i + 2)? != b"\\u" {
            return None;
        }
        let lo = hex4(*i + 2)?;
        if !(0xdc00..0xe000).contains(&lo) {
            return None;
        }
        *i += 6;
        return char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
    }
    char::from_u32(hi)
}
