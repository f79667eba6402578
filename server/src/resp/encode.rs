//! The reply encoder: a [`Reply`] to RESP2 or RESP3 bytes.
//!
//! Writes straight into the connection's output buffer: integers and
//! doubles are formatted on the stack, never through `format!`. Doubles
//! print as Redis 7.2's `d2string` does (see [`format_double`]).

use std::fmt::Write as _;

use crate::reply::Reply;

/// The protocol a connection speaks, chosen with `HELLO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, the default until `HELLO 3`.
    Resp2,
    /// RESP3: nulls, doubles, booleans, maps, sets and pushes have their own types.
    Resp3,
}

/// Appends the encoding of `reply` for `proto` to `out`.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut Vec<u8>) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(s) => line(b'+', s.as_bytes(), out),
        Reply::Error(s) => line(b'-', s.as_bytes(), out),
        Reply::Int(n) => int_line(b':', *n, out),
        Reply::Bulk(b) => bulk(b, out),
        Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => aggregate(b'*', items, proto, out),
        Reply::Double(v) => double(*v, resp3, out),
        Reply::Bool(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Map(pairs) => map(pairs, proto, out),
        Reply::Set(items) => aggregate(if resp3 { b'~' } else { b'*' }, items, proto, out),
        Reply::Verbatim(format, data) => verbatim(format, data, resp3, out),
        Reply::Push(items) => aggregate(if resp3 { b'>' } else { b'*' }, items, proto, out),
        Reply::Several(items) => items.iter().for_each(|r| encode(r, proto, out)),
        Reply::Pairs(pairs) => pair_array(pairs, proto, out),
        Reply::Keyed(pairs) if resp3 => map(pairs, proto, out),
        Reply::Keyed(pairs) => {
            len_line(b'*', pairs.len(), out);
            for (k, v) in pairs {
                len_line(b'*', 2, out);
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
    }
}

/// Appends Redis 7.2's text for a double (`d2string`): `nan`, `inf`,
/// `-inf`, `0`, `-0`; integral values within ±2^62 as integers; otherwise
/// the shortest digits that round-trip, laid out as Redis's `fpconv_dtoa`
/// does (`0.1`, `1.5`, `0.000015`, `1e-7`, `1.5e+300`, `1e+21`).
pub fn format_double(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-inf" } else { b"inf" });
    } else if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
    } else if let Some(n) = double2ll(v) {
        write_i64(n, out);
    } else {
        if v < 0.0 {
            out.push(b'-');
        }
        shortest(v.abs(), out);
    }
}

/// Appends a signed integer in decimal.
pub(crate) fn write_i64(n: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 21];
    out.extend_from_slice(decimal_i64(n, &mut buf));
}

/// Appends an unsigned integer in decimal, formatted on the stack.
pub(crate) fn write_u64(n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut buf));
}

/// A signed integer in decimal, formatted at the end of `buf` (no allocation:
/// INCR stores its result this way).
pub(crate) fn decimal_i64(n: i64, buf: &mut [u8; 21]) -> &[u8] {
    let len = decimal(n.unsigned_abs(), &mut buf[1..]).len();
    let mut start = buf.len() - len;
    if n < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

/// The decimal digits of `n`, written at the end of `buf` (20 bytes hold any `u64`).
fn decimal(mut n: u64, buf: &mut [u8]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `<prefix><text>\r\n`, with any CR or LF in the text replaced by a space
/// so the reply stays one line.
fn line(prefix: u8, text: &[u8], out: &mut Vec<u8>) {
    out.push(prefix);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            other => other,
        }));
    } else {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(b"\r\n");
}

/// `<prefix><n>\r\n`.
fn int_line(prefix: u8, n: i64, out: &mut Vec<u8>) {
    out.push(prefix);
    write_i64(n, out);
    out.extend_from_slice(b"\r\n");
}

/// `<prefix><len>\r\n`, for a length or count.
fn len_line(prefix: u8, n: usize, out: &mut Vec<u8>) {
    out.push(prefix);
    write_u64(n as u64, out);
    out.extend_from_slice(b"\r\n");
}

/// A bulk string: `$<len>\r\n<bytes>\r\n`.
fn bulk(bytes: &[u8], out: &mut Vec<u8>) {
    len_line(b'$', bytes.len(), out);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// An aggregate header then its items.
fn aggregate(prefix: u8, items: &[Reply], proto: Protocol, out: &mut Vec<u8>) {
    len_line(prefix, items.len(), out);
    for item in items {
        encode(item, proto, out);
    }
}

/// A map: `%n` in RESP3, a flat array of 2n items in RESP2.
fn map(pairs: &[(Reply, Reply)], proto: Protocol, out: &mut Vec<u8>) {
    match proto {
        Protocol::Resp3 => len_line(b'%', pairs.len(), out),
        Protocol::Resp2 => len_line(b'*', pairs.len().saturating_mul(2), out),
    }
    for (key, value) in pairs {
        encode(key, proto, out);
        encode(value, proto, out);
    }
}

/// Pairs: `*n` of `*2` arrays in RESP3, a flat array of 2n items in RESP2.
fn pair_array(pairs: &[(Reply, Reply)], proto: Protocol, out: &mut Vec<u8>) {
    let resp3 = proto == Protocol::Resp3;
    len_line(b'*', if resp3 { pairs.len() } else { pairs.len().saturating_mul(2) }, out);
    for (a, b) in pairs {
        if resp3 {
            len_line(b'*', 2, out);
        }
        encode(a, proto, out);
        encode(b, proto, out);
    }
}

/// A double: `,<repr>\r\n` in RESP3, a bulk string of the repr in RESP2.
fn double(v: f64, resp3: bool, out: &mut Vec<u8>) {
    if resp3 {
        out.push(b',');
        format_double(v, out);
        out.extend_from_slice(b"\r\n");
    } else {
        // Format in place, then slip the `$<len>\r\n` header in front of
        // the (at most 24) bytes written.
        let start = out.len();
        format_double(v, out);
        let mut buf = [0u8; 20];
        let len = decimal((out.len() - start) as u64, &mut buf);
        let header = [&b"$"[..], len, b"\r\n"];
        out.splice(start..start, header.into_iter().flatten().copied());
        out.extend_from_slice(b"\r\n");
    }
}

/// A verbatim string: `=<len>\r\n<fmt>:<data>\r\n` in RESP3, a bulk string of the data in RESP2.
fn verbatim(format: &str, data: &[u8], resp3: bool, out: &mut Vec<u8>) {
    if !resp3 {
        bulk(data, out);
        return;
    }
    len_line(b'=', format.len() + 1 + data.len(), out);
    out.extend_from_slice(format.as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Redis's `double2ll`: the integer value of `v` when it is integral and
/// within ±`LLONG_MAX/2`.
fn double2ll(v: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&v) {
        return None;
    }
    let n = v as i64;
    (n as f64 == v).then_some(n)
}

/// A small stack buffer for `core::fmt` output.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends a finite positive `v` from its shortest round-trip digits.
fn shortest(v: f64, out: &mut Vec<u8>) {
    let mut sci = StackBuf { buf: [0; 40], len: 0 };
    // Rust's `{:e}` prints the shortest round-trip digits: "1.5e-7", "1e21".
    if write!(sci, "{v:e}").is_err() {
        return;
    }
    let text = &sci.buf[..sci.len];
    let Some(e) = text.iter().position(|&b| b == b'e') else {
        return;
    };
    let (mantissa, exponent) = (&text[..e], &text[e + 1..]);
    let mut digits = [0u8; 24];
    let mut ndigits = 0;
    for &d in mantissa.iter().filter(|&&d| d != b'.') {
        if let Some(slot) = digits.get_mut(ndigits) {
            *slot = d;
            ndigits += 1;
        }
    }
    let exp10 = std::str::from_utf8(exponent).ok().and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
    emit_digits(&digits[..ndigits], exp10 - (ndigits as i32 - 1), out);
}

/// Lays out `digits` × 10^`k` as Redis's `fpconv_dtoa` (`emit_digits`) does.
fn emit_digits(digits: &[u8], k: i32, out: &mut Vec<u8>) {
    let nd = digits.len() as i32;
    let exp = (k + nd - 1).abs();
    if k >= 0 && exp < nd + 7 {
        // A plain integer: digits then k zeros.
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
    } else if k < 0 && (k > -7 || exp < 4) {
        // A decimal without exponent.
        let offset = nd + k;
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-offset) as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let (int, frac) = digits.split_at(offset as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
    } else {
        // Scientific: d[.ddd]e±x.
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'e');
        out.push(if k + nd - 1 < 0 { b'-' } else { b'+' });
        write_u64(u64::from(exp.unsigned_abs()), out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Protocol::{Resp2, Resp3};

    #[test]
    fn decimal_i64_matches_display() {
        for n in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut buf = [0u8; 21];
            assert_eq!(decimal_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }

    fn enc(reply: &Reply, proto: Protocol) -> String {
        let mut out = Vec::new();
        encode(reply, proto, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn both(reply: Reply, resp2: &str, resp3: &str) {
        assert_eq!(enc(&reply, Resp2), resp2, "{reply:?} RESP2");
        assert_eq!(enc(&reply, Resp3), resp3, "{reply:?} RESP3");
    }

    fn same(reply: Reply, text: &str) {
        both(reply, text, text);
    }

    #[test]
    fn scalars() {
        same(Reply::Ok, "+OK\r\n");
        same(Reply::simple("PONG"), "+PONG\r\n");
        same(Reply::simple("a\r\nb\nc"), "+a  b c\r\n");
        same(Reply::error("ERR bad"), "-ERR bad\r\n");
        same(Reply::error("ERR x\ny"), "-ERR x y\r\n");
        same(Reply::Int(0), ":0\r\n");
        same(Reply::Int(-42), ":-42\r\n");
        same(Reply::Int(i64::MAX), ":9223372036854775807\r\n");
        same(Reply::Int(i64::MIN), ":-9223372036854775808\r\n");
        same(Reply::bulk("a\r\nb"), "$4\r\na\r\nb\r\n");
        same(Reply::bulk(""), "$0\r\n\r\n");
        both(Reply::Nil, "$-1\r\n", "_\r\n");
        both(Reply::NilArray, "*-1\r\n", "_\r\n");
        both(Reply::Bool(true), ":1\r\n", "#t\r\n");
        both(Reply::Bool(false), ":0\r\n", "#f\r\n");
        both(Reply::Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n");
        both(Reply::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n");
        both(Reply::Double(-0.0), "$2\r\n-0\r\n", ",-0\r\n");
        both(Reply::Double(1e21), "$5\r\n1e+21\r\n", ",1e+21\r\n");
        both(Reply::Double(3.0000000000000004), "$18\r\n3.0000000000000004\r\n", ",3.0000000000000004\r\n");
        let mut out = b"+OK\r\n".to_vec();
        encode(&Reply::Double(0.5), Resp2, &mut out);
        assert_eq!(out, b"+OK\r\n$3\r\n0.5\r\n");
        both(Reply::Verbatim("txt", b"hi".to_vec()), "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn nested_aggregates() {
        both(
            Reply::Array(vec![Reply::Int(1), Reply::bulk("x"), Reply::Nil]),
            "*3\r\n:1\r\n$1\r\nx\r\n$-1\r\n",
            "*3\r\n:1\r\n$1\r\nx\r\n_\r\n",
        );
        same(Reply::Array(vec![]), "*0\r\n");
        both(
            Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1)), (Reply::bulk("b"), Reply::Bool(true))]),
            "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:1\r\n",
            "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n#t\r\n",
        );
        both(Reply::Map(vec![]), "*0\r\n", "%0\r\n");
        both(
            Reply::Pairs(vec![(Reply::bulk("f"), Reply::bulk("v")), (Reply::bulk("m"), Reply::Double(1.5))]),
            "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nm\r\n$3\r\n1.5\r\n",
            "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nm\r\n,1.5\r\n",
        );
        both(Reply::Pairs(vec![]), "*0\r\n", "*0\r\n");
        both(Reply::Set(vec![Reply::bulk("m")]), "*1\r\n$1\r\nm\r\n", "~1\r\n$1\r\nm\r\n");
        both(
            Reply::Push(vec![Reply::bulk("message"), Reply::Set(vec![])]),
            "*2\r\n$7\r\nmessage\r\n*0\r\n",
            ">2\r\n$7\r\nmessage\r\n~0\r\n",
        );
    }

    fn repr(v: f64) -> String {
        let mut out = Vec::new();
        format_double(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_match_redis() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (1.5e-5, "0.000015"),
            (1.23e-6, "1.23e-6"),
            (3.0000000000000004, "3.0000000000000004"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (9007199254740992.0, "9007199254740992"),
            (9007199254740994.0, "9007199254740994"),
            (1e18, "1000000000000000000"),
            (1e19, "1e+19"),
            (9.5e18, "9.5e+18"),
            (1e300, "1e+300"),
            (-1.5e300, "-1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
            (1234567.125, "1234567.125"),
        ];
        for &(v, want) in cases {
            assert_eq!(repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn doubles_round_trip() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                assert_eq!(repr(v).parse::<f64>().unwrap(), v, "{v:e}");
            }
        }
    }
}
