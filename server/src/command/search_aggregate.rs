//! [FT.AGGREGATE](https://redis.io/docs/latest/commands/ft.aggregate/): a
//! query's matches run through a pipeline of GROUPBY/REDUCE, SORTBY, APPLY,
//! FILTER and LIMIT steps, with RediSearch 2.10's replies.
//!
//! The connection runs it ([`AsyncCmd::Aggregate`](super::AsyncCmd)) in one
//! round: every shard finds its matching documents ([`Index::matching`],
//! unscored) and answers one row per document with the hash fields the
//! pipeline needs ([`rows_part`]: LOADed fields shown, fields the steps refer
//! to hidden). The connection sorts all rows by key, so the answer does not
//! depend on how keys fell on shards, and runs the whole pipeline itself.
//!
//! Scaling limits: every matching row travels to the coordinating
//! connection and the pipeline runs there, in memory, on one core. That is
//! simple and exact, but costs memory and time linear in the number of
//! matches; a large corpus would want GROUPBY reduced partly on each shard.
//! WITHCURSOR (and FT.CURSOR) is not supported.
//!
//! Departures from RediSearch, where it is not exact: QUANTILE is the exact
//! nearest-rank quantile (RediSearch estimates it), RANDOM_SAMPLE draws with
//! a fixed seed, TOLIST keeps first-seen order, and groups come out in the
//! order their first row (by key) was seen.
//!
//! [`Index::matching`]: strand_engine::search::Index::matching

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use strand_engine::search::exec::{Request, Scorer};
use strand_engine::search::query::{parse, ParseOptions};
use strand_engine::search::Schema;

use super::search::{hash_of, no_such_index};
use super::search_query::{reap_expired, scatter};
use super::series::kw;
use super::strings::{parse_f64, parse_i64};
use super::{keyless, AsyncCmd, Command, Ctx, Route};
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::resp::Protocol;

use super::search_query::{bad, count_at, text};

/// `n` arguments after the count at `at`.
fn counted<'a>(args: &[&'a [u8]], at: usize, what: &str) -> Result<Vec<&'a [u8]>, Reply> {
    let n = count_at(args, at, what)?;
    args.get(at + 1..at + 1 + n).map(<[&[u8]]>::to_vec).ok_or_else(|| bad(what))
}

/// A property argument: `@name` gives `name`.
fn property(a: &[u8], what: &str) -> Result<String, Reply> {
    match a.strip_prefix(b"@") {
        Some(p) if !p.is_empty() => Ok(text(p)),
        _ => Err(Reply::error(format!("Bad arguments for {what}: Unknown property `{}`. Did you mean `@{}`?", text(a), text(a)))),
    }
}

// ---------------------------------------------------------------------------
// Values and rows
// ---------------------------------------------------------------------------

/// A value in a row.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Num(f64),
    Str(String),
    List(Vec<Val>),
}

/// A number as RediSearch prints it: integers without decimals, other
/// numbers as the shortest text that reads back the same.
fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x.fract() == 0.0 && x.abs() < 1e17 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Val {
    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(x) => Some(*x),
            Val::Str(s) => parse_f64(s.trim().as_bytes()),
            _ => None,
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Num(x) => *x != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.is_empty(),
        }
    }

    fn text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Num(x) => fmt_num(*x),
            Val::Str(s) => s.clone(),
            Val::List(l) => l.iter().map(Val::text).collect::<Vec<_>>().join(","),
        }
    }

    /// A key that tells values apart (for groups and distinct counts).
    fn ident(&self) -> String {
        match self {
            Val::Null => "\0null".into(),
            Val::List(l) => l.iter().map(Val::ident).collect::<Vec<_>>().join("\0,"),
            v => v.text(),
        }
    }

    fn reply(&self) -> Reply {
        match self {
            Val::Null => Reply::Nil,
            Val::Num(x) => Reply::Bulk(fmt_num(*x).into_bytes()),
            Val::Str(s) => Reply::bulk(s),
            Val::List(l) => Reply::Array(l.iter().map(Val::reply).collect()),
        }
    }
}

/// Orders values: numbers (and numeric text) by number, else by text; null first.
fn cmp_vals(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Null, _) => Ordering::Less,
        (_, Val::Null) => Ordering::Greater,
        _ => match (a.num(), b.num()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.text().cmp(&b.text()),
        },
    }
}

/// One row: its document key and named values; hidden ones are not answered.
#[derive(Debug, Clone, Default)]
struct Row {
    key: Vec<u8>,
    cols: Vec<(String, Val, bool)>,
}

impl Row {
    fn get(&self, name: &str) -> Option<&Val> {
        self.cols.iter().find(|(n, _, _)| n == name).map(|(_, v, _)| v)
    }

    /// Sets a shown value, replacing one of the same name.
    fn set(&mut self, name: &str, v: Val) {
        match self.cols.iter_mut().find(|(n, _, _)| n == name) {
            Some(c) => (c.1, c.2) = (v, true),
            None => self.cols.push((name.to_string(), v, true)),
        }
    }
}

// ---------------------------------------------------------------------------
// Expressions (APPLY, FILTER)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Upper,
    Lower,
    Strlen,
    Floor,
    Ceil,
    Abs,
    Sqrt,
    Log,
    Log2,
    Exp,
    Substr,
    Exists,
    ToNumber,
    ToStr,
}

impl Func {
    fn named(name: &str) -> Option<(Func, usize)> {
        Some(match name.to_ascii_lowercase().as_str() {
            "upper" => (Func::Upper, 1),
            "lower" => (Func::Lower, 1),
            "strlen" => (Func::Strlen, 1),
            "floor" => (Func::Floor, 1),
            "ceil" => (Func::Ceil, 1),
            "abs" => (Func::Abs, 1),
            "sqrt" => (Func::Sqrt, 1),
            "log" => (Func::Log, 1),
            "log2" => (Func::Log2, 1),
            "exp" => (Func::Exp, 1),
            "substr" => (Func::Substr, 3),
            "exists" => (Func::Exists, 1),
            "to_number" => (Func::ToNumber, 1),
            "to_str" => (Func::ToStr, 1),
            _ => return None,
        })
    }
}

/// An APPLY or FILTER expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Lit(Val),
    Prop(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Prop(String),
    Ident(String),
    Sym(&'static str),
}

fn syntax(src: &str, why: &str) -> Reply {
    Reply::error(format!("Syntax error in expression `{src}`: {why}"))
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Result<Vec<Tok>, Reply> {
    const SYMS: [&str; 18] = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "^", "!", "(", ")", ","];
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
                if chars.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                    i += 1 + sign;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(s.parse().map_err(|_| syntax(src, &format!("bad number `{s}`")))?));
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(syntax(src, "unterminated string")),
                    Some(&q) if q == c => break,
                    Some('\\') if i + 1 < chars.len() => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&x) => {
                        s.push(x);
                        i += 1;
                    }
                }
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '@' {
            let start = i + 1;
            i = start;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            if i == start {
                return Err(syntax(src, "`@` without a property name"));
            }
            out.push(Tok::Prop(chars[start..i].iter().collect()));
        } else if ident_char(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = SYMS.iter().find(|s| rest.starts_with(**s)).ok_or_else(|| syntax(src, &format!("unexpected `{c}`")))?;
            i += sym.chars().count();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

/// A precedence-climbing parser over the tokens.
struct Parser<'a> {
    src: &'a str,
    toks: Vec<Tok>,
    at: usize,
}

fn binary_op(t: &Tok) -> Option<(Op, u8)> {
    let Tok::Sym(s) = t else { return None };
    Some(match *s {
        "||" => (Op::Or, 1),
        "&&" => (Op::And, 2),
        "==" => (Op::Eq, 3),
        "!=" => (Op::Ne, 3),
        "<" => (Op::Lt, 3),
        "<=" => (Op::Le, 3),
        ">" => (Op::Gt, 3),
        ">=" => (Op::Ge, 3),
        "+" => (Op::Add, 4),
        "-" => (Op::Sub, 4),
        "*" => (Op::Mul, 5),
        "/" => (Op::Div, 5),
        "%" => (Op::Mod, 5),
        "^" => (Op::Pow, 6),
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, Reply> {
        let mut left = self.unary()?;
        while let Some((op, prec)) = self.peek().and_then(binary_op) {
            if prec < min {
                break;
            }
            self.at += 1;
            // `^` is right-associative; the rest left-associative.
            let right = self.expr(if op == Op::Pow { prec } else { prec + 1 })?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Reply> {
        match self.peek() {
            Some(Tok::Sym("-")) => {
                self.at += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Sym("!")) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, Reply> {
        let tok = self.peek().cloned().ok_or_else(|| syntax(self.src, "unexpected end"))?;
        self.at += 1;
        match tok {
            Tok::Num(x) => Ok(Expr::Lit(Val::Num(x))),
            Tok::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Tok::Prop(p) => Ok(Expr::Prop(p)),
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                if !self.eat(")") {
                    return Err(syntax(self.src, "missing `)`"));
                }
                Ok(e)
            }
            Tok::Ident(name) => self.call(&name),
            Tok::Sym(s) => Err(syntax(self.src, &format!("unexpected `{s}`"))),
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, Reply> {
        if !self.eat("(") {
            return Err(syntax(self.src, &format!("unexpected `{name}`")));
        }
        let (func, arity) = Func::named(name).ok_or_else(|| Reply::error(format!("Unknown function name '{name}'")))?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr(0)?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(syntax(self.src, "expected `,` or `)`"));
                }
            }
        }
        if args.len() != arity {
            return Err(Reply::error(format!("Function `{name}` takes {arity} argument(s), got {}", args.len())));
        }
        if func == Func::Exists && !matches!(args[0], Expr::Prop(_)) {
            return Err(Reply::error("exists() takes a property"));
        }
        Ok(Expr::Call(func, args))
    }
}

impl Expr {
    fn parse(src: &str) -> Result<Expr, Reply> {
        let mut p = Parser { src, toks: lex(src)?, at: 0 };
        if p.toks.is_empty() {
            return Err(syntax(src, "empty expression"));
        }
        let e = p.expr(0)?;
        if p.at != p.toks.len() {
            return Err(syntax(src, "unexpected text after the expression"));
        }
        Ok(e)
    }

    /// Every property it reads.
    fn props<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Prop(p) => out.push(p),
            Expr::Neg(e) | Expr::Not(e) => e.props(out),
            Expr::Bin(_, a, b) => {
                a.props(out);
                b.props(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.props(out)),
        }
    }

    fn eval(&self, row: &Row) -> Val {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Prop(p) => row.get(p).cloned().unwrap_or(Val::Null),
            Expr::Neg(e) => e.eval(row).num().map_or(Val::Null, |x| Val::Num(-x)),
            Expr::Not(e) => bool_val(!e.eval(row).truthy()),
            Expr::Bin(Op::And, a, b) => bool_val(a.eval(row).truthy() && b.eval(row).truthy()),
            Expr::Bin(Op::Or, a, b) => bool_val(a.eval(row).truthy() || b.eval(row).truthy()),
            Expr::Bin(op, a, b) => binary(*op, &a.eval(row), &b.eval(row)),
            Expr::Call(Func::Exists, args) => bool_val(!matches!(args[0].eval(row), Val::Null)),
            Expr::Call(f, args) => {
                let vals: Vec<Val> = args.iter().map(|a| a.eval(row)).collect();
                call(*f, &vals)
            }
        }
    }
}

fn bool_val(b: bool) -> Val {
    Val::Num(if b { 1.0 } else { 0.0 })
}

fn binary(op: Op, a: &Val, b: &Val) -> Val {
    let cmp = || cmp_vals(a, b);
    match op {
        Op::Eq => return bool_val(cmp() == Ordering::Equal),
        Op::Ne => return bool_val(cmp() != Ordering::Equal),
        Op::Lt => return bool_val(cmp() == Ordering::Less),
        Op::Le => return bool_val(cmp() != Ordering::Greater),
        Op::Gt => return bool_val(cmp() == Ordering::Greater),
        Op::Ge => return bool_val(cmp() != Ordering::Less),
        _ => {}
    }
    let (Some(x), Some(y)) = (a.num(), b.num()) else { return Val::Null };
    Val::Num(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
        Op::Mod if y as i64 != 0 => ((x as i64) % (y as i64)) as f64,
        Op::Mod => f64::NAN,
        _ => x.powf(y),
    })
}

fn call(f: Func, v: &[Val]) -> Val {
    let num = |g: fn(f64) -> f64| v[0].num().map_or(Val::Null, |x| Val::Num(g(x)));
    match f {
        Func::Upper => Val::Str(v[0].text().to_uppercase()),
        Func::Lower => Val::Str(v[0].text().to_lowercase()),
        Func::Strlen => Val::Num(v[0].text().len() as f64),
        Func::Floor => num(f64::floor),
        Func::Ceil => num(f64::ceil),
        Func::Abs => num(f64::abs),
        Func::Sqrt => num(f64::sqrt),
        Func::Log => num(f64::ln),
        Func::Log2 => num(f64::log2),
        Func::Exp => num(f64::exp),
        Func::ToNumber => v[0].num().map_or(Val::Null, Val::Num),
        Func::ToStr => Val::Str(v[0].text()),
        Func::Substr => substr(&v[0].text(), v[1].num().unwrap_or(0.0) as i64, v[2].num().unwrap_or(0.0) as i64),
        Func::Exists => Val::Null,
    }
}

/// `substr(s, offset, len)`: a negative offset counts from the end, a
/// negative length stops that many characters before the end.
fn substr(s: &str, offset: i64, len: i64) -> Val {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = if offset < 0 { (n + offset).max(0) } else { offset.min(n) };
    let end = if len < 0 { (n + len + 1).max(start) } else { (start + len).min(n) };
    Val::Str(chars[start as usize..end.max(start) as usize].iter().collect())
}

// ---------------------------------------------------------------------------
// Reducers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Avg,
    Stddev,
    ToList,
    FirstValue(Option<(String, bool)>),
    Quantile(f64),
    Sample(usize),
}

/// `REDUCE func nargs args... [AS name]`.
#[derive(Debug, Clone, PartialEq)]
struct Reducer {
    kind: Kind,
    prop: Option<String>,
    name: String,
}

/// RediSearch's name for an unnamed reducer: a fixed head, then the
/// function and its arguments with `@` taken off, joined by commas, in
/// lower case (`__generated_aliassumprice`, `__generated_aliasquantileprice,0.5`).
fn generated(func: &[u8], args: &[&[u8]]) -> String {
    let words: Vec<String> = args.iter().map(|a| text(a.strip_prefix(b"@").unwrap_or(a))).collect();
    format!("__generated_alias{}{}", text(func), words.join(",")).to_lowercase()
}

impl Reducer {
    /// Parses from `args[at]` (the function name); returns it and the index after it.
    fn parse(args: &[&[u8]], at: usize) -> Result<(Reducer, usize), Reply> {
        let func = args.get(at).ok_or_else(|| bad("REDUCE"))?;
        let rargs = counted(args, at + 1, "REDUCE")?;
        let mut next = at + 2 + rargs.len();
        let prop = |i: usize| rargs.get(i).ok_or_else(|| bad("REDUCE")).and_then(|a| property(a, "REDUCE"));
        let f = text(func).to_uppercase();
        let want = |n: usize| {
            if rargs.len() == n {
                Ok(())
            } else {
                Err(Reply::error(format!("Bad arguments for {f}: wrong number of arguments")))
            }
        };
        let (kind, p) = match f.as_str() {
            "COUNT" => want(0).map(|_| (Kind::Count, None))?,
            "COUNT_DISTINCT" | "COUNT_DISTINCTISH" => (want(1).map(|_| Kind::CountDistinct)?, Some(prop(0)?)),
            "SUM" => (want(1).map(|_| Kind::Sum)?, Some(prop(0)?)),
            "MIN" => (want(1).map(|_| Kind::Min)?, Some(prop(0)?)),
            "MAX" => (want(1).map(|_| Kind::Max)?, Some(prop(0)?)),
            "AVG" => (want(1).map(|_| Kind::Avg)?, Some(prop(0)?)),
            "STDDEV" => (want(1).map(|_| Kind::Stddev)?, Some(prop(0)?)),
            "TOLIST" => (want(1).map(|_| Kind::ToList)?, Some(prop(0)?)),
            "FIRST_VALUE" => (Kind::FirstValue(first_value_by(&rargs, &f)?), Some(prop(0)?)),
            "QUANTILE" => {
                want(2)?;
                let q = parse_f64(rargs[1]).filter(|q| (0.0..=1.0).contains(q));
                (Kind::Quantile(q.ok_or_else(|| Reply::error("Quantile must be between 0 and 1"))?), Some(prop(0)?))
            }
            "RANDOM_SAMPLE" => {
                want(2)?;
                let n = parse_i64(rargs[1]).filter(|n| (1..=1000).contains(n));
                (Kind::Sample(n.ok_or_else(|| Reply::error("Sample size must be between 1 and 1000"))? as usize), Some(prop(0)?))
            }
            _ => return Err(Reply::error(format!("No such reducer: {}", text(func)))),
        };
        let mut name = generated(func, &rargs);
        if args.get(next).is_some_and(|a| kw(a, "AS")) {
            name = text(args.get(next + 1).ok_or_else(|| bad("AS"))?);
            next += 2;
        }
        Ok((Reducer { kind, prop: p, name }, next))
    }
}

fn first_value_by(rargs: &[&[u8]], f: &str) -> Result<Option<(String, bool)>, Reply> {
    let wrong = || Reply::error(format!("Bad arguments for {f}: wrong number of arguments"));
    match rargs.len() {
        1 => Ok(None),
        3 | 4 if kw(rargs[1], "BY") => {
            let asc = match rargs.get(3) {
                None => true,
                Some(d) if kw(d, "ASC") => true,
                Some(d) if kw(d, "DESC") => false,
                Some(_) => return Err(wrong()),
            };
            Ok(Some((property(rargs[2], f)?, asc)))
        }
        _ => Err(wrong()),
    }
}

/// A reducer's running state for one group.
#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(f64),
    Min(f64),
    Max(f64),
    Moments { n: u64, sum: f64, sumsq: f64 },
    List(Vec<Val>, HashSet<String>),
    First(Option<(Val, Val)>),
    Values(Vec<f64>),
    Sample { seen: u64, seed: u64, items: Vec<Val> },
}

impl Acc {
    fn new(k: &Kind) -> Acc {
        match k {
            Kind::Count => Acc::Count(0),
            Kind::CountDistinct => Acc::Distinct(HashSet::new()),
            Kind::Sum => Acc::Sum(0.0),
            Kind::Min => Acc::Min(f64::INFINITY),
            Kind::Max => Acc::Max(f64::NEG_INFINITY),
            Kind::Avg | Kind::Stddev => Acc::Moments { n: 0, sum: 0.0, sumsq: 0.0 },
            Kind::ToList => Acc::List(Vec::new(), HashSet::new()),
            Kind::FirstValue(_) => Acc::First(None),
            Kind::Quantile(_) => Acc::Values(Vec::new()),
            Kind::Sample(_) => Acc::Sample { seen: 0, seed: 0x9E37_79B9_7F4A_7C15, items: Vec::new() },
        }
    }

    fn add(&mut self, r: &Reducer, row: &Row) {
        let v = r.prop.as_deref().and_then(|p| row.get(p)).cloned().unwrap_or(Val::Null);
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Distinct(set) => {
                if v != Val::Null {
                    set.insert(v.ident());
                }
            }
            Acc::Sum(s) => *s += v.num().unwrap_or(0.0),
            Acc::Min(m) => *m = v.num().map_or(*m, |x| m.min(x)),
            Acc::Max(m) => *m = v.num().map_or(*m, |x| m.max(x)),
            Acc::Moments { n, sum, sumsq } => {
                if let Some(x) = v.num() {
                    (*n, *sum, *sumsq) = (*n + 1, *sum + x, *sumsq + x * x);
                }
            }
            Acc::List(items, seen) => {
                let vals = if let Val::List(l) = v { l } else { vec![v] };
                for x in vals.into_iter().filter(|x| *x != Val::Null) {
                    if seen.insert(x.ident()) {
                        items.push(x);
                    }
                }
            }
            Acc::First(cur) => first_value(cur, &r.kind, v, row),
            Acc::Values(xs) => xs.extend(v.num()),
            Acc::Sample { seen, seed, items } => {
                let Kind::Sample(cap) = r.kind else { return };
                *seen += 1;
                if items.len() < cap {
                    items.push(v);
                } else {
                    // xorshift64: a fixed-seed reservoir, so answers repeat.
                    *seed ^= *seed << 13;
                    *seed ^= *seed >> 7;
                    *seed ^= *seed << 17;
                    let slot = (*seed % *seen) as usize;
                    if slot < cap {
                        items[slot] = v;
                    }
                }
            }
        }
    }

    fn finish(self, k: &Kind) -> Val {
        match self {
            Acc::Count(n) => Val::Num(n as f64),
            Acc::Distinct(s) => Val::Num(s.len() as f64),
            Acc::Sum(x) | Acc::Min(x) | Acc::Max(x) => Val::Num(x),
            Acc::Moments { n, sum, .. } if *k == Kind::Avg => Val::Num(if n == 0 { f64::NAN } else { sum / n as f64 }),
            Acc::Moments { n, sum, sumsq } => {
                let var = if n < 2 { 0.0 } else { (sumsq - sum * sum / n as f64) / (n - 1) as f64 };
                Val::Num(var.max(0.0).sqrt())
            }
            Acc::List(items, _) => Val::List(items),
            Acc::First(cur) => cur.map_or(Val::Null, |(v, _)| v),
            Acc::Values(mut xs) => {
                let Kind::Quantile(q) = k else { return Val::Null };
                xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
                let rank = ((q * xs.len() as f64).ceil() as usize).saturating_sub(1);
                xs.get(rank.min(xs.len().saturating_sub(1))).map_or(Val::Null, |x| Val::Num(*x))
            }
            Acc::Sample { items, .. } => Val::List(items),
        }
    }
}

/// FIRST_VALUE: the value of the first row, or of the row whose BY value sorts first.
fn first_value(cur: &mut Option<(Val, Val)>, k: &Kind, v: Val, row: &Row) {
    let Kind::FirstValue(by) = k else { return };
    let Some((by, asc)) = by else {
        if cur.is_none() {
            *cur = Some((v, Val::Null));
        }
        return;
    };
    let b = row.get(by).cloned().unwrap_or(Val::Null);
    let better = match cur {
        None => true,
        Some(_) if b == Val::Null => false,
        Some((_, Val::Null)) => true,
        Some((_, old)) => {
            let o = cmp_vals(&b, old);
            if *asc {
                o == Ordering::Less
            } else {
                o == Ordering::Greater
            }
        }
    };
    if better {
        *cur = Some((v, b));
    }
}

// ---------------------------------------------------------------------------
// Arguments and the pipeline
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Group { keys: Vec<String>, reducers: Vec<Reducer> },
    Sort { keys: Vec<(String, bool)>, max: Option<usize> },
    Apply { expr: Expr, name: String },
    Filter(Expr),
    Limit { offset: usize, num: usize },
}

/// FT.AGGREGATE's arguments.
#[derive(Debug, Clone, Default)]
struct AggArgs {
    index: String,
    query: String,
    verbatim: bool,
    load_all: bool,
    /// LOAD: (property, name shown).
    load: Vec<(String, String)>,
    steps: Vec<Step>,
    params: Vec<(String, String)>,
}

/// `SORTBY nargs (@prop [ASC|DESC])... [MAX n]` from `args[at]` (the count).
fn parse_sortby(args: &[&[u8]], at: usize) -> Result<(Step, usize), Reply> {
    let items = counted(args, at, "SORTBY")?;
    let mut keys: Vec<(String, bool)> = Vec::new();
    for it in &items {
        if kw(it, "ASC") || kw(it, "DESC") {
            let last = keys.last_mut().ok_or_else(|| bad("SORTBY"))?;
            last.1 = kw(it, "ASC");
        } else {
            keys.push((property(it, "SORTBY")?, true));
        }
    }
    let mut next = at + 1 + items.len();
    let mut max = None;
    if args.get(next).is_some_and(|a| kw(a, "MAX")) {
        max = Some(count_at(args, next + 1, "MAX")?);
        next += 2;
    }
    Ok((Step::Sort { keys, max }, next))
}

/// `GROUPBY nargs @prop... (REDUCE ...)*` from `args[at]` (the count).
fn parse_groupby(args: &[&[u8]], at: usize) -> Result<(Step, usize), Reply> {
    let items = counted(args, at, "GROUPBY")?;
    let keys = items.iter().map(|a| property(a, "GROUPBY")).collect::<Result<Vec<_>, _>>()?;
    let mut next = at + 1 + items.len();
    let mut reducers = Vec::new();
    while args.get(next).is_some_and(|a| kw(a, "REDUCE")) {
        let (r, n) = Reducer::parse(args, next + 1)?;
        reducers.push(r);
        next = n;
    }
    Ok((Step::Group { keys, reducers }, next))
}

/// `LOAD * | LOAD n (@prop [AS name])...`.
fn parse_load(a: &mut AggArgs, args: &[&[u8]], at: usize) -> Result<usize, Reply> {
    if args.get(at).is_some_and(|x| *x == b"*") {
        a.load_all = true;
        return Ok(at + 1);
    }
    let items = counted(args, at, "LOAD")?;
    let mut i = 0;
    while i < items.len() {
        let p = text(items[i].strip_prefix(b"@").unwrap_or(items[i]));
        let shown = if items.get(i + 1).is_some_and(|x| kw(x, "AS")) {
            i += 2;
            text(items.get(i).ok_or_else(|| bad("LOAD"))?)
        } else {
            p.clone()
        };
        a.load.push((p, shown));
        i += 1;
    }
    Ok(at + 1 + items.len())
}

impl AggArgs {
    fn parse(args: &[&[u8]]) -> Result<AggArgs, Reply> {
        let mut a = AggArgs { index: text(args[1]), query: text(args[2]), ..AggArgs::default() };
        let mut at = 3;
        while let Some(&w) = args.get(at) {
            let flag = |word: &str| kw(w, word);
            at = if flag("VERBATIM") {
                a.verbatim = true;
                at + 1
            } else if flag("LOAD") {
                parse_load(&mut a, args, at + 1)?
            } else if flag("GROUPBY") {
                let (s, n) = parse_groupby(args, at + 1)?;
                a.steps.push(s);
                n
            } else if flag("SORTBY") {
                let (s, n) = parse_sortby(args, at + 1)?;
                a.steps.push(s);
                n
            } else if flag("APPLY") {
                let e = Expr::parse(&text(args.get(at + 1).ok_or_else(|| bad("APPLY"))?))?;
                if !args.get(at + 2).is_some_and(|x| kw(x, "AS")) {
                    return Err(Reply::error("Bad arguments for APPLY: AS name is required"));
                }
                let name = text(args.get(at + 3).ok_or_else(|| bad("AS"))?);
                a.steps.push(Step::Apply { expr: e, name });
                at + 4
            } else if flag("FILTER") {
                a.steps.push(Step::Filter(Expr::parse(&text(args.get(at + 1).ok_or_else(|| bad("FILTER"))?))?));
                at + 2
            } else if flag("LIMIT") {
                let (offset, num) = (count_at(args, at + 1, "LIMIT")?, count_at(args, at + 2, "LIMIT")?);
                a.steps.push(Step::Limit { offset, num });
                at + 3
            } else if flag("PARAMS") {
                let items = counted(args, at + 1, "PARAMS")?;
                if items.len() % 2 != 0 {
                    return Err(Reply::error("Bad arguments for PARAMS: Expected an even number of arguments"));
                }
                a.params = items.chunks(2).map(|p| (text(p[0]), text(p[1]))).collect();
                at + 2 + items.len()
            } else if flag("DIALECT") {
                match args.get(at + 1).and_then(|d| parse_i64(d)) {
                    Some(1..=4) => at + 2,
                    _ => return Err(Reply::error("DIALECT requires a value from 1 to 4")),
                }
            } else if flag("TIMEOUT") {
                count_at(args, at + 1, "TIMEOUT")?;
                at + 2
            } else if flag("WITHCURSOR") {
                return Err(Reply::error("WITHCURSOR is not supported yet"));
            } else {
                return Err(Reply::error(format!("Unknown argument `{}`", text(w))));
            };
        }
        Ok(a)
    }

    /// What a shard reads for each document: (source, name, shown). A
    /// property the steps read before the first GROUPBY that is neither
    /// loaded nor made by an earlier step is read hidden from the schema
    /// field (or, with `LOAD *`, the hash field) of that name.
    fn plan(&self, schema: &Schema) -> Result<Vec<(Vec<u8>, String, bool)>, Reply> {
        let source = |p: &str| -> Option<Vec<u8>> {
            match schema.field(p) {
                Some((_, f)) => Some(f.name.clone()),
                None if p == "__key" || self.load_all => Some(p.as_bytes().to_vec()),
                None => None,
            }
        };
        let unknown = |p: &str| Reply::error(format!("Property `{p}` not loaded nor in schema"));
        let mut loads: Vec<(Vec<u8>, String, bool)> = Vec::new();
        for (p, shown) in &self.load {
            let src = schema.field(p).map_or_else(|| p.as_bytes().to_vec(), |(_, f)| f.name.clone());
            loads.push((src, shown.clone(), true));
        }
        // Names a row has at this point; None: every document field (before GROUPBY).
        let mut known: HashSet<String> = loads.iter().map(|(_, n, _)| n.clone()).collect();
        let mut grouped = false;
        for step in &self.steps {
            let mut refs: Vec<&str> = Vec::new();
            match step {
                Step::Group { keys, reducers } => {
                    refs.extend(keys.iter().map(String::as_str));
                    for r in reducers {
                        refs.extend(r.prop.as_deref());
                        if let Kind::FirstValue(Some((by, _))) = &r.kind {
                            refs.push(by);
                        }
                    }
                }
                Step::Sort { keys, .. } => refs.extend(keys.iter().map(|(k, _)| k.as_str())),
                Step::Apply { expr, .. } | Step::Filter(expr) => expr.props(&mut refs),
                Step::Limit { .. } => {}
            }
            for p in refs {
                if known.contains(p) {
                    continue;
                }
                match source(p) {
                    Some(src) if !grouped => {
                        if !(self.load_all && schema.field(p).is_none()) {
                            loads.push((src, p.to_string(), false));
                        }
                        known.insert(p.to_string());
                    }
                    _ => return Err(unknown(p)),
                }
            }
            match step {
                Step::Group { keys, reducers } => {
                    grouped = true;
                    known = keys.iter().cloned().chain(reducers.iter().map(|r| r.name.clone())).collect();
                }
                Step::Apply { name, .. } => {
                    known.insert(name.clone());
                }
                _ => {}
            }
        }
        Ok(loads)
    }
}

/// Groups rows by `keys` and reduces each group to one row.
fn group(rows: Vec<Row>, keys: &[String], reducers: &[Reducer]) -> Vec<Row> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Val>, Vec<Acc>)> = Vec::new();
    for row in &rows {
        let vals: Vec<Val> = keys.iter().map(|k| row.get(k).cloned().unwrap_or(Val::Null)).collect();
        let id = vals.iter().map(Val::ident).collect::<Vec<_>>().join("\0|");
        let g = *at.entry(id).or_insert_with(|| {
            groups.push((vals, reducers.iter().map(|r| Acc::new(&r.kind)).collect()));
            groups.len() - 1
        });
        for (acc, r) in groups[g].1.iter_mut().zip(reducers) {
            acc.add(r, row);
        }
    }
    groups
        .into_iter()
        .map(|(vals, accs)| {
            let mut row = Row::default();
            for (k, v) in keys.iter().zip(vals) {
                row.set(k, v);
            }
            for (acc, r) in accs.into_iter().zip(reducers) {
                row.set(&r.name, acc.finish(&r.kind));
            }
            row
        })
        .collect()
}

fn sort(rows: &mut Vec<Row>, keys: &[(String, bool)], max: usize) {
    let null = Val::Null;
    rows.sort_by(|a, b| {
        for (k, asc) in keys {
            let o = cmp_vals(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
            if o != Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        Ordering::Equal
    });
    rows.truncate(max);
}

/// Runs the steps; answers the result count and the rows.
fn run(steps: &[Step], mut rows: Vec<Row>) -> (usize, Vec<Row>) {
    let mut total = rows.len();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Group { keys, reducers } => {
                rows = group(rows, keys, reducers);
                total = rows.len();
            }
            Step::Sort { keys, max } => {
                // As in RediSearch: without MAX, a LIMIT right after bounds the sort, else 10 rows.
                let cap = match (max, steps.get(i + 1)) {
                    (Some(m), _) => *m,
                    (None, Some(Step::Limit { .. })) => usize::MAX,
                    (None, _) => 10,
                };
                sort(&mut rows, keys, cap);
            }
            Step::Apply { expr, name } => {
                for row in &mut rows {
                    let v = expr.eval(row);
                    row.set(name, v);
                }
            }
            Step::Filter(expr) => {
                // As in RediSearch, a row filtered out is not counted.
                let before = rows.len();
                rows.retain(|r| expr.eval(r).truthy());
                total -= before - rows.len();
            }
            Step::Limit { offset, num } => {
                rows = rows.into_iter().skip(*offset).take(*num).collect();
            }
        }
    }
    (total, rows)
}

// ---------------------------------------------------------------------------
// Shards and the connection
// ---------------------------------------------------------------------------

/// On a shard: `[(key, (name, value, shown)*)*]`, one array per matching document.
fn rows_part(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reap_expired(ctx);
    match shard_rows(ctx, args) {
        Ok(rows) => Reply::Array(rows),
        Err(e) => e,
    }
}

fn shard_rows(ctx: &Ctx<'_>, args: &[&[u8]]) -> Result<Vec<Reply>, Reply> {
    let a = AggArgs::parse(args)?;
    let ix = ctx.shard.ks.search(ctx.db).get(&a.index).ok_or_else(|| no_such_index(args[1]))?;
    let loads = a.plan(&ix.schema)?;
    let opts = ParseOptions { params: &a.params, no_stopwords: false, stopwords: ix.schema.stopwords.as_deref(), verbatim: a.verbatim };
    let node = parse(&a.query, &opts).map_err(|e| Reply::error(e.0))?;
    let req = Request { scorer: Scorer::default(), slop: None, inorder: false, infields: None, sort: None, top: 0 };
    let keys = ix.matching(&node, &req).map_err(|e| Reply::error(e.0))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let mut row = vec![Reply::bulk(key)];
        let h = hash_of(ctx, key);
        if a.load_all {
            for (f, v) in h.iter().flat_map(|h| h.iter()) {
                row.extend([Reply::bulk(f), Reply::bulk(v), Reply::Int(1)]);
            }
        }
        for (src, name, shown) in &loads {
            let v = if src == b"__key" { Some(key) } else { h.and_then(|h| h.get(src)).map(|v| &v[..]) };
            if let Some(v) = v {
                row.extend([Reply::bulk(name), Reply::bulk(v), Reply::Int(i64::from(*shown))]);
            }
        }
        out.push(Reply::Array(row));
    }
    Ok(out)
}

fn decode_row(r: Reply) -> Option<Row> {
    let Reply::Array(v) = r else { return None };
    let mut it = v.into_iter();
    let Some(Reply::Bulk(key)) = it.next() else { return None };
    let rest: Vec<Reply> = it.collect();
    let mut row = Row { key, cols: Vec::new() };
    for c in rest.chunks(3) {
        if let [Reply::Bulk(n), Reply::Bulk(v), Reply::Int(shown)] = c {
            let name = text(n);
            if row.get(&name).is_none() {
                row.cols.push((name, Val::Str(text(v)), *shown != 0));
            }
        }
    }
    Some(row)
}

/// FT.AGGREGATE, run by the connection.
pub async fn aggregate(shard: &Rc<Shard>, db: usize, caller: u64, proto: Protocol, args: &[&[u8]]) -> Reply {
    let a = match AggArgs::parse(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let mut rows = Vec::new();
    for part in scatter(shard, rows_part, db, caller, args).await {
        let Reply::Array(v) = part else { return part };
        rows.extend(v.into_iter().filter_map(decode_row));
    }
    rows.sort_by(|x, y| x.key.cmp(&y.key));
    let (total, rows) = run(&a.steps, rows);
    reply(total, &rows, proto)
}

fn reply(total: usize, rows: &[Row], proto: Protocol) -> Reply {
    let pairs = |r: &Row| -> Vec<(Reply, Reply)> { r.cols.iter().filter(|c| c.2).map(|(n, v, _)| (Reply::bulk(n), v.reply())).collect() };
    if proto == Protocol::Resp3 {
        let results = rows
            .iter()
            .map(|r| {
                Reply::Map(vec![
                    (Reply::bulk(b"extra_attributes"), Reply::Map(pairs(r))),
                    (Reply::bulk(b"values"), Reply::Array(Vec::new())),
                ])
            })
            .collect();
        return Reply::Map(vec![
            (Reply::bulk(b"attributes"), Reply::Array(Vec::new())),
            (Reply::bulk(b"format"), Reply::bulk(b"STRING")),
            (Reply::bulk(b"results"), Reply::Array(results)),
            (Reply::bulk(b"total_results"), Reply::Int(total as i64)),
            (Reply::bulk(b"warning"), Reply::Array(Vec::new())),
        ]);
    }
    let mut out = vec![Reply::Int(total as i64)];
    for r in rows {
        out.push(Reply::Array(pairs(r).into_iter().flat_map(|(k, v)| [k, v]).collect()));
    }
    Reply::Array(out)
}

fn cursor(_: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    Reply::error("WITHCURSOR is not supported yet")
}

/// FT.AGGREGATE and FT.CURSOR (which answers that cursors are not supported).
pub const COMMANDS: &[Command] = &[
    keyless(
        "ft.aggregate",
        -3,
        super::flags::READONLY,
        Route::Async(AsyncCmd::Aggregate),
        &["@read", "@search", "@slow"],
        "Runs a search query and an aggregate pipeline over its matches.",
    ),
    keyless(
        "ft.cursor",
        -2,
        super::flags::READONLY,
        Route::Local(cursor),
        &["@read", "@search", "@slow"],
        "Reads or deletes an aggregate cursor (not supported).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, Val)]) -> Row {
        Row { key: Vec::new(), cols: cols.iter().map(|(n, v)| (n.to_string(), v.clone(), true)).collect() }
    }

    fn eval(src: &str, r: &Row) -> Val {
        match Expr::parse(src) {
            Ok(e) => e.eval(r),
            Err(e) => panic!("{src}: {e:?}"),
        }
    }

    #[test]
    fn expressions() {
        let r = row(&[("x", Val::Str("7".into())), ("s", Val::Str("Hello".into()))]);
        assert_eq!(eval("@x * 2 + 1", &r), Val::Num(15.0));
        assert_eq!(eval("(@x - 1) / 4", &r), Val::Num(1.5));
        assert_eq!(eval("2 ^ 3 ^ 2", &r), Val::Num(512.0));
        assert_eq!(eval("@x % 4", &r), Val::Num(3.0));
        assert_eq!(eval("-@x", &r), Val::Num(-7.0));
        assert_eq!(eval("@x > 5 && !(@x == 8) || 0", &r), Val::Num(1.0));
        assert_eq!(eval("upper(@s)", &r), Val::Str("HELLO".into()));
        assert_eq!(eval("substr(@s, 1, 3)", &r), Val::Str("ell".into()));
        assert_eq!(eval("substr(@s, -2, 5)", &r), Val::Str("lo".into()));
        assert_eq!(eval("strlen(lower(@s))", &r), Val::Num(5.0));
        assert_eq!(eval("exists(@nope)", &r), Val::Num(0.0));
        assert_eq!(eval("floor(sqrt(@x))", &r), Val::Num(2.0));
        assert_eq!(eval("to_str(1.5) == \"1.5\"", &r), Val::Num(1.0));
        assert!(Expr::parse("nope(1)").is_err());
        assert!(Expr::parse("1 +").is_err());
        assert!(Expr::parse("(1").is_err());
        assert!(Expr::parse("1 2").is_err());
    }

    #[test]
    fn numbers_print_like_redisearch() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_num(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(fmt_num(2.5), "2.5");
    }

    #[test]
    fn generated_names() {
        assert_eq!(generated(b"COUNT", &[]), "__generated_aliascount");
        assert_eq!(generated(b"SUM", &[b"@Price"]), "__generated_aliassumprice");
        assert_eq!(generated(b"QUANTILE", &[b"@p", b"0.5"]), "__generated_aliasquantilep,0.5");
    }
}
