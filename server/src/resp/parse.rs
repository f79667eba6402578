//! The request parser: one client command out of a read buffer.
//!
//! Mirrors Redis 7's `processMultibulkBuffer` and `processInlineBuffer`
//! (networking.c): the same number syntax (`string2ll`), the same limits and
//! the same error texts. The parser is stateless and zero-copy: a RESP array
//! is returned as `(start, len)` ranges into the caller's buffer, so a frame
//! split across reads is simply parsed again once more bytes arrived;
//! [`Parsed::Incomplete`] says how many bytes are worth waiting for. Inline
//! commands may unescape quoted text, so their arguments are owned.

use std::fmt;
use std::sync::OnceLock;

/// Limits on request sizes, as Redis's config and compile-time constants set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string accepted (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Most elements in one request array.
    pub max_multibulk_len: usize,
    /// Longest inline request, and longest `*`/`$` count line, without its
    /// terminator having arrived (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_multibulk_len: 1024 * 1024, max_inline_len: 64 * 1024 }
    }
}

/// What one call of [`parse_command`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One complete command; `args` has been filled with (start, len) byte
    /// ranges into the buffer; `consumed` bytes form the frame.
    Command { consumed: usize },
    /// One complete inline command, its arguments unescaped and owned;
    /// `consumed` bytes form the line, terminator included.
    Inline { consumed: usize, args: Vec<Vec<u8>> },
    /// An empty inline line, or a multibulk of length <= 0 (`*0\r\n`,
    /// `*-1\r\n`): skip `consumed` bytes, no command.
    Skip { consumed: usize },
    /// Not enough bytes yet. `need` is a lower bound on the total buffer
    /// length needed before parsing can make progress.
    Incomplete { need: usize },
}

/// A malformed request; the text is the full Redis error, `ERR Protocol error: ...`.
/// The connection replies with it and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ProtocolError {}

const INVALID_MBULK: ProtocolError = ProtocolError("ERR Protocol error: invalid multibulk length");
const TOO_BIG_MBULK: ProtocolError = ProtocolError("ERR Protocol error: too big mbulk count string");
const INVALID_BULK: ProtocolError = ProtocolError("ERR Protocol error: invalid bulk length");
const TOO_BIG_BULK: ProtocolError = ProtocolError("ERR Protocol error: too big bulk count string");
const BAD_BULK_END: ProtocolError = ProtocolError("ERR Protocol error: invalid bulk format");
const TOO_BIG_INLINE: ProtocolError = ProtocolError("ERR Protocol error: too big inline request");
const UNBALANCED: ProtocolError = ProtocolError("ERR Protocol error: unbalanced quotes in request");

/// Cap on the up-front reservation for a request's argument list, whatever count it declares.
const MAX_ARGS_RESERVE: usize = 1024;

/// Parses one request from the start of `buf`.
///
/// `args` is cleared, and on [`Parsed::Command`] holds the argument ranges;
/// on any other outcome it is left empty.
pub fn parse_command(buf: &[u8], limits: &Limits, args: &mut Vec<(usize, usize)>) -> Result<Parsed, ProtocolError> {
    args.clear();
    let result = match buf.first() {
        None => Ok(Parsed::Incomplete { need: 1 }),
        Some(b'*') => parse_multibulk(buf, limits, args),
        Some(_) => parse_inline(buf, limits),
    };
    if !matches!(result, Ok(Parsed::Command { .. })) {
        args.clear();
    }
    result
}

/// Splits one inline request line (without its terminator) into arguments,
/// like Redis's `sdssplitargs`.
pub fn parse_inline_owned(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    // sdssplitargs works on a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => line.get(..nul).unwrap_or(line),
        None => line,
    };
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while line.get(p).is_some_and(|&b| is_space(b)) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(args);
        }
        let (arg, next) = split_token(line, p)?;
        args.push(arg);
        p = next;
    }
}

/// The `need` of an outcome where only "more bytes" is known.
fn more(buf: &[u8]) -> Parsed {
    Parsed::Incomplete { need: buf.len().saturating_add(1) }
}

/// Where a `\r`-terminated count line starting at some offset ends.
enum Line {
    /// The `\r` is at `cr`; the next line starts at `cr + 2`.
    Found { cr: usize },
    /// No terminator yet.
    Incomplete,
    /// No `\r` and more than the inline limit buffered.
    TooBig,
}

/// Finds the count line at `start`, as Redis does: the first `\r`, which
/// must be followed by one more byte (assumed to be `\n`).
fn find_line(buf: &[u8], start: usize, max: usize) -> Line {
    let rest = buf.get(start..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r') {
        None if rest.len() > max => Line::TooBig,
        None => Line::Incomplete,
        Some(i) if i + 2 > rest.len() => Line::Incomplete,
        Some(i) => Line::Found { cr: start + i },
    }
}

/// Parses a `*<count>\r\n` array of bulk strings at the start of `buf`.
fn parse_multibulk(buf: &[u8], limits: &Limits, args: &mut Vec<(usize, usize)>) -> Result<Parsed, ProtocolError> {
    let cr = match find_line(buf, 0, limits.max_inline_len) {
        Line::Found { cr } => cr,
        Line::Incomplete => return Ok(more(buf)),
        Line::TooBig => return Err(TOO_BIG_MBULK),
    };
    let max = i64::try_from(limits.max_multibulk_len).unwrap_or(i64::MAX);
    let count = buf.get(1..cr).and_then(string2ll).filter(|&n| n <= max).ok_or(INVALID_MBULK)?;
    let mut pos = cr + 2;
    if count <= 0 {
        return Ok(Parsed::Skip { consumed: pos });
    }
    let count = usize::try_from(count).map_err(|_| INVALID_MBULK)?;
    args.reserve(count.min(MAX_ARGS_RESERVE));
    for _ in 0..count {
        match parse_bulk(buf, pos, limits)? {
            Bulk::Done { start, len, next } => {
                args.push((start, len));
                pos = next;
            }
            Bulk::Incomplete(need) => return Ok(need),
        }
    }
    Ok(Parsed::Command { consumed: pos })
}

/// One bulk string of a request array.
enum Bulk {
    /// The payload is `len` bytes at `start`; the next element starts at `next`.
    Done { start: usize, len: usize, next: usize },
    /// Not all there yet.
    Incomplete(Parsed),
}

/// Parses the `$<len>\r\n<payload>\r\n` bulk string starting at `pos`.
fn parse_bulk(buf: &[u8], pos: usize, limits: &Limits) -> Result<Bulk, ProtocolError> {
    let cr = match find_line(buf, pos, limits.max_inline_len) {
        Line::Found { cr } => cr,
        Line::Incomplete => return Ok(Bulk::Incomplete(more(buf))),
        Line::TooBig => return Err(TOO_BIG_BULK),
    };
    match buf.get(pos) {
        Some(b'$') => {}
        Some(&other) => return Err(expected_dollar(other)),
        None => return Ok(Bulk::Incomplete(more(buf))),
    }
    let len = buf
        .get(pos + 1..cr)
        .and_then(string2ll)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limits.max_bulk_len)
        .ok_or(INVALID_BULK)?;
    let start = cr + 2;
    let end = start.checked_add(len).ok_or(INVALID_BULK)?;
    let next = end.checked_add(2).ok_or(INVALID_BULK)?;
    match buf.get(end..next) {
        None => Ok(Bulk::Incomplete(Parsed::Incomplete { need: next })),
        Some(b"\r\n") => Ok(Bulk::Done { start, len, next }),
        Some(_) => Err(BAD_BULK_END),
    }
}

/// The "expected '$', got 'X'" error for the byte found.
///
/// The texts are built once and kept for the life of the process, so the
/// error can stay a `&'static str`. Like Redis's reply sanitising, `\r` and
/// `\n` show as spaces; bytes outside ASCII (not valid in a `str`) show as `?`.
fn expected_dollar(found: u8) -> ProtocolError {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (0..=255u8)
            .map(|b| {
                let shown = match b {
                    b'\r' | b'\n' => ' ',
                    0..=0x7f => char::from(b),
                    _ => '?',
                };
                format!("ERR Protocol error: expected '$', got '{shown}'")
            })
            .collect()
    });
    let text = texts.get(usize::from(found)).map_or("ERR Protocol error: expected '$'", String::as_str);
    ProtocolError(text)
}

/// Parses an inline request: one line ending in `\n` or `\r\n`.
fn parse_inline(buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_len {
            return Err(TOO_BIG_INLINE);
        }
        return Ok(more(buf));
    };
    let line = buf.get(..nl).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let args = parse_inline_owned(line)?;
    let consumed = nl + 1;
    if args.is_empty() {
        Ok(Parsed::Skip { consumed })
    } else {
        Ok(Parsed::Inline { consumed, args })
    }
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Quoting state while splitting an inline argument.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Double,
    Single,
}

/// Reads one inline argument starting at `p` (not a space); returns it and
/// the offset to continue from. A port of the token loop of `sdssplitargs`,
/// where reading past the end yields NUL as in C.
fn split_token(line: &[u8], mut p: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut arg = Vec::new();
    let mut quote = Quote::None;
    loop {
        let c = at(p);
        let mut done = false;
        match quote {
            Quote::Double => {
                let hex = (c == b'\\' && at(p + 1) == b'x').then(|| Some(hex_value(at(p + 2))? * 16 + hex_value(at(p + 3))?)).flatten();
                if let Some(byte) = hex {
                    arg.push(byte);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    arg.push(unescape(at(p)));
                } else if c == b'"' {
                    closing_quote_ok(at(p + 1))?;
                    done = true;
                } else if c == 0 {
                    return Err(UNBALANCED);
                } else {
                    arg.push(c);
                }
            }
            Quote::Single => {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    arg.push(b'\'');
                } else if c == b'\'' {
                    closing_quote_ok(at(p + 1))?;
                    done = true;
                } else if c == 0 {
                    return Err(UNBALANCED);
                } else {
                    arg.push(c);
                }
            }
            Quote::None => match c {
                b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                b'"' => quote = Quote::Double,
                b'\'' => quote = Quote::Single,
                _ => arg.push(c),
            },
        }
        if c != 0 {
            p += 1;
        }
        if done {
            return Ok((arg, p));
        }
    }
}

/// A closing quote must be followed by a space or the end of the line.
fn closing_quote_ok(next: u8) -> Result<(), ProtocolError> {
    if next != 0 && !is_space(next) {
        return Err(UNBALANCED);
    }
    Ok(())
}

/// The byte a backslash escape inside double quotes stands for.
fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    }
}

/// The value of one hex digit.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Redis's `string2ll`: an optional `-`, then `0` alone or digits without a
/// leading zero; no `+`, no spaces, at most 20 characters, within `i64`.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What one frame parses to: its arguments, or a skip.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Frame {
        Cmd(Vec<Vec<u8>>),
        Skip,
    }

    fn cmd(args: &[&[u8]]) -> Frame {
        Frame::Cmd(args.iter().map(|a| a.to_vec()).collect())
    }

    /// Parses frames from `buf` until it cannot; returns them, the bytes
    /// consumed, and the final (non-frame) outcome.
    fn parse_all(buf: &[u8], limits: &Limits) -> (Vec<(Frame, usize)>, usize, Result<Parsed, ProtocolError>) {
        let mut frames = Vec::new();
        let mut pos = 0;
        let mut args = Vec::new();
        loop {
            let rest = &buf[pos..];
            let r = parse_command(rest, limits, &mut args);
            match r {
                Ok(Parsed::Command { consumed }) => {
                    assert!(consumed > 0 && consumed <= rest.len());
                    let owned = args.iter().map(|&(s, l)| rest[s..s + l].to_vec()).collect();
                    pos += consumed;
                    frames.push((Frame::Cmd(owned), pos));
                }
                Ok(Parsed::Inline { consumed, args }) => {
                    assert!(consumed > 0 && consumed <= rest.len());
                    pos += consumed;
                    frames.push((Frame::Cmd(args), pos));
                }
                Ok(Parsed::Skip { consumed }) => {
                    assert!(consumed > 0 && consumed <= rest.len());
                    pos += consumed;
                    frames.push((Frame::Skip, pos));
                }
                other => return (frames, pos, other),
            }
        }
    }

    /// Checks every prefix of the concatenated `frames`: the complete
    /// leading frames parse exactly, then Incomplete with a sound `need`.
    fn check_splits(frames: &[(&[u8], Frame)]) {
        let limits = Limits::default();
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for (bytes, _) in frames {
            buf.extend_from_slice(bytes);
            ends.push(buf.len());
        }
        for i in 0..=buf.len() {
            let (got, pos, last) = parse_all(&buf[..i], &limits);
            let want: Vec<(Frame, usize)> =
                frames.iter().zip(&ends).filter(|(_, &end)| end <= i).map(|((_, f), &end)| (f.clone(), end)).collect();
            assert_eq!(got, want, "prefix {i}");
            let Ok(Parsed::Incomplete { need }) = last else {
                panic!("prefix {i}: {last:?}");
            };
            let rest_len = i - pos;
            assert!(need > rest_len, "prefix {i}: need {need}");
            if let Some(&next_end) = ends.iter().find(|&&e| e > i) {
                assert!(pos + need <= next_end, "prefix {i}: need {need} too big");
            }
        }
    }

    #[test]
    fn simple_command_every_split() {
        check_splits(&[(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", cmd(&[b"SET", b"key", b"value"]))]);
    }

    #[test]
    fn binary_bulk_every_split() {
        check_splits(&[(b"*2\r\n$4\r\nECHO\r\n$8\r\na\r\nb\r\n\x00\xff\r\n", cmd(&[b"ECHO", b"a\r\nb\r\n\x00\xff"]))]);
    }

    #[test]
    fn empty_bulk_every_split() {
        check_splits(&[(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", cmd(&[b"ECHO", b""]))]);
    }

    #[test]
    fn big_bulk_every_split() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut frame = b"*2\r\n$3\r\nSET\r\n$100000\r\n".to_vec();
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(b"\r\n");
        check_splits(&[(&frame, cmd(&[b"SET", &payload]))]);
    }

    #[test]
    fn inline_quotes_every_split() {
        check_splits(&[(b"SET \"a b\\x41\\n\\\"\" 'it\\'s' plain\r\n", cmd(&[b"SET", b"a bA\n\"", b"it's", b"plain"]))]);
        check_splits(&[(b"PING\n", cmd(&[b"PING"]))]);
    }

    #[test]
    fn pipeline_every_split() {
        check_splits(&[
            (b"*1\r\n$4\r\nPING\r\n", cmd(&[b"PING"])),
            (b"*0\r\n", Frame::Skip),
            (b"GET  k\r\n", cmd(&[b"GET", b"k"])),
            (b"\r\n", Frame::Skip),
            (b"*2\r\n$3\r\nGET\r\n$2\r\n\r\n\r\n", cmd(&[b"GET", b"\r\n"])),
            (b"*-1\r\n", Frame::Skip),
            (b"ECHO \"x\"\n", cmd(&[b"ECHO", b"x"])),
        ]);
    }

    fn parse(buf: &[u8]) -> Result<Parsed, ProtocolError> {
        parse_command(buf, &Limits::default(), &mut Vec::new())
    }

    fn err(buf: &[u8]) -> &'static str {
        parse(buf).unwrap_err().0
    }

    #[test]
    fn multibulk_length_errors() {
        let invalid = "ERR Protocol error: invalid multibulk length";
        for bad in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*+1\r\n",
            b"*01\r\n",
            b"*-0\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*1048577\r\n",
            b"*9999999999999999999999\r\n",
        ] {
            assert_eq!(err(bad), invalid, "{bad:?}");
        }
        assert!(matches!(parse(b"*1048576\r\n"), Ok(Parsed::Incomplete { .. })));
        let mut long = b"*".to_vec();
        long.resize(64 * 1024 + 2, b'1');
        assert_eq!(err(&long), "ERR Protocol error: too big mbulk count string");
        long.truncate(64 * 1024);
        assert!(matches!(parse(&long), Ok(Parsed::Incomplete { .. })));
    }

    #[test]
    fn bulk_errors() {
        let invalid = "ERR Protocol error: invalid bulk length";
        for bad in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$-5\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$+1\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$536870913\r\n",
        ] {
            assert_eq!(err(bad), invalid, "{bad:?}");
        }
        assert_eq!(err(b"*1\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
        assert_eq!(err(b"*1\r\n\r\n"), "ERR Protocol error: expected '$', got ' '");
        assert_eq!(err(b"*1\r\n\xff\r\n"), "ERR Protocol error: expected '$', got '?'");
        assert_eq!(err(b"*1\r\n$3\r\nfooXY"), "ERR Protocol error: invalid bulk format");
        let mut long = b"*1\r\n$".to_vec();
        long.resize(4 + 64 * 1024 + 1, b'1');
        assert_eq!(err(&long), "ERR Protocol error: too big bulk count string");
    }

    #[test]
    fn inline_errors() {
        let unbalanced = "ERR Protocol error: unbalanced quotes in request";
        for bad in [&b"SET \"abc\r\n"[..], b"SET 'abc\r\n", b"SET \"a\"b\r\n", b"SET 'a'b\n", b"SET \"a\\\"\n"] {
            assert_eq!(err(bad), unbalanced, "{bad:?}");
        }
        let long = vec![b'a'; 64 * 1024 + 1];
        assert_eq!(err(&long), "ERR Protocol error: too big inline request");
        assert!(matches!(parse(&long[1..]), Ok(Parsed::Incomplete { .. })));
    }

    #[test]
    fn inline_splitting() {
        let split = |s: &[u8]| parse_inline_owned(s).unwrap();
        assert_eq!(split(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split(b" \t "), Vec::<Vec<u8>>::new());
        assert_eq!(split(b"a  b\tc"), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(split(b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\\x4a\\xzz\""), vec![b"\n\r\t\x08\x07\\\"qJxzz".to_vec()]);
        assert_eq!(split(b"'a\\nb\\''"), vec![b"a\\nb'".to_vec()]);
        assert_eq!(split(b"x\"y z\""), vec![b"xy z".to_vec()]);
        assert_eq!(split(b"\"\" ''"), vec![b"".to_vec(), b"".to_vec()]);
        assert_eq!(split(b"a\0b c"), vec![b"a".to_vec()]);
        assert_eq!(parse(b"  \r\n"), Ok(Parsed::Skip { consumed: 4 }));
        assert_eq!(parse(b"PING \"a\"\r\nrest"), Ok(Parsed::Inline { consumed: 10, args: vec![b"PING".to_vec(), b"a".to_vec()] }));
    }

    #[test]
    fn skips_empty_and_negative_counts() {
        assert_eq!(parse(b"*0\r\n"), Ok(Parsed::Skip { consumed: 4 }));
        assert_eq!(parse(b"*-1\r\n"), Ok(Parsed::Skip { consumed: 5 }));
        assert_eq!(parse(b"*-100\r\nX"), Ok(Parsed::Skip { consumed: 7 }));
        assert_eq!(parse(b"\n"), Ok(Parsed::Skip { consumed: 1 }));
        assert_eq!(parse(b"\r\n"), Ok(Parsed::Skip { consumed: 2 }));
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        let limits = Limits { max_bulk_len: usize::MAX, max_multibulk_len: usize::MAX, max_inline_len: 64 * 1024 };
        let mut args = Vec::new();
        let r = parse_command(b"*9999999999999\r\n$1\r\na\r\n", &limits, &mut args);
        assert!(matches!(r, Ok(Parsed::Incomplete { .. })));
        assert!(args.capacity() <= MAX_ARGS_RESERVE);
        let r = parse_command(b"*1\r\n$9999999999999\r\n", &limits, &mut args);
        assert_eq!(r, Ok(Parsed::Incomplete { need: 20 + 9_999_999_999_999 + 2 }));
        let r = parse_command(b"*1\r\n$9223372036854775807\r\n", &limits, &mut args);
        assert!(r.is_err() || matches!(r, Ok(Parsed::Incomplete { .. })));
        assert_eq!(err(b"*9999999999999\r\n"), "ERR Protocol error: invalid multibulk length");
        assert_eq!(err(b"*1\r\n$9999999999999\r\n"), "ERR Protocol error: invalid bulk length");
    }

    #[test]
    fn need_covers_declared_bulk() {
        let header = b"*2\r\n$3\r\nSET\r\n$1000000\r\n";
        let full = header.len() + 1_000_000 + 2;
        let Ok(Parsed::Incomplete { need }) = parse(header) else {
            panic!("expected Incomplete");
        };
        assert_eq!(need, full);
        let mut partial = header.to_vec();
        partial.resize(header.len() + 500, b'x');
        assert_eq!(parse(&partial), Ok(Parsed::Incomplete { need: full }));
    }

    #[test]
    fn command_ranges_point_into_buffer() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n";
        let mut args = vec![(7, 7)];
        let r = parse_command(buf, &Limits::default(), &mut args);
        assert_eq!(r, Ok(Parsed::Command { consumed: 20 }));
        assert_eq!(args, vec![(8, 3), (17, 1)]);
    }

    #[test]
    fn string2ll_matches_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"123456789012345678901",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    /// A xorshift64 generator, for fuzzing without crates.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[u8] = b"*$\r\n\r\n0123456789-+ \"'\\xaZ\t\0\xff";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let small = Limits { max_bulk_len: 64, max_multibulk_len: 8, max_inline_len: 16 };
        let mut args = Vec::new();
        for n in 0..10_000 {
            let len = (rng.next() % 64) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    if r & 3 == 0 {
                        r as u8
                    } else {
                        ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                    }
                })
                .collect();
            let limits = if n % 2 == 0 { Limits::default() } else { small };
            match parse_command(&buf, &limits, &mut args) {
                Ok(Parsed::Command { consumed }) => {
                    assert!(consumed <= buf.len());
                    for &(s, l) in &args {
                        assert!(s + l <= consumed);
                    }
                }
                Ok(Parsed::Inline { consumed, .. }) | Ok(Parsed::Skip { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                }
                Ok(Parsed::Incomplete { need }) => assert!(need > buf.len()),
                Err(e) => assert!(e.0.starts_with("ERR Protocol error: ")),
            }
        }
    }
}
