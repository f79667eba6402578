//! Lua scripting, checked against what redis-server 7.0 answers: EVAL,
//! EVALSHA, EVAL_RO, SCRIPT LOAD/EXISTS/FLUSH/KILL, the redis library,
//! conversions between Lua and RESP both ways, the sandbox, the shard rule
//! for keys, atomicity across SIGKILL, busy scripts and SCRIPT KILL, and a
//! job scheduler built on one script.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, RedisResult, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::{err, error_text, q, start};
use strand_tests::{RedisServer, Server};

const BUSY: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";

/// EVAL with keys and arguments.
fn eval(c: &mut Connection, script: &str, keys: &[&str], args: &[&str]) -> RedisResult<Value> {
    let mut r = redis::cmd("EVAL");
    r.arg(script).arg(keys.len()).arg(keys).arg(args);
    r.query(c)
}

/// EVAL that must succeed.
fn ev(c: &mut Connection, script: &str, keys: &[&str], args: &[&str]) -> Value {
    eval(c, script, keys, args).unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// EVAL that must fail; the error line.
fn ev_err(c: &mut Connection, script: &str, keys: &[&str], args: &[&str]) -> String {
    match eval(c, script, keys, args) {
        Ok(v) => panic!("{script}: expected an error, got {v:?}"),
        Err(e) => error_text(&e),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// The SHA-1 Redis names a script by (computed by the server's redis.sha1hex).
fn sha(c: &mut Connection, body: &str) -> String {
    let v = ev(c, "return redis.sha1hex(ARGV[1])", &[], &[body]);
    redis::from_redis_value(&v).unwrap()
}

/// Redis's suffix of a script error raised at `line`.
fn at(c: &mut Connection, body: &str, line: u32) -> String {
    format!(" script: {}, on @user_script:{line}.", sha(c, body))
}

/// A key `shard` owns (servers here run 2 shards).
fn key_on(shard: usize, prefix: &str) -> String {
    let map = SlotMap::new(2);
    (0..).map(|i| format!("{prefix}{i}")).find(|k| map.shard_of(k.as_bytes()) == shard).unwrap()
}

/// A connection living on `shard`: a keyless script runs on the connection's
/// shard, and touching a key of another shard from it is an error.
fn client_on(s: &Server, shard: usize) -> Connection {
    let probe = key_on(shard, "probe");
    for _ in 0..200 {
        let mut c = s.client();
        if eval(&mut c, "return redis.call('exists', ARGV[1])", &[], &[&probe]).is_ok() {
            return c;
        }
    }
    panic!("no connection landed on shard {shard}");
}

/// Raw RESP bytes of one request, read until `expected.len()` bytes arrived.
fn wire(s: &Server, request: &[&[u8]], expected: &[u8]) {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = format!("*{}\r\n", request.len()).into_bytes();
    for a in request {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    t.write_all(&out).unwrap();
    let mut got = vec![0u8; expected.len()];
    t.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
}

// ---------------------------------------------------------------- Lua -> RESP

#[test]
fn lua_values_become_redis_replies() {
    let (_s, mut c) = start();
    assert_eq!(ev(&mut c, "return 42", &[], &[]), Value::Int(42));
    // Numbers are truncated toward zero; out-of-range ones become i64::MIN as in Redis (a C cast).
    assert_eq!(ev(&mut c, "return 3.99", &[], &[]), Value::Int(3));
    assert_eq!(ev(&mut c, "return -3.99", &[], &[]), Value::Int(-3));
    assert_eq!(ev(&mut c, "return 1e100", &[], &[]), Value::Int(i64::MIN));
    assert_eq!(ev(&mut c, "return 'ciao'", &[], &[]), bulk("ciao"));
    assert_eq!(ev(&mut c, "return true", &[], &[]), Value::Int(1));
    assert_eq!(ev(&mut c, "return false", &[], &[]), Value::Nil);
    assert_eq!(ev(&mut c, "return nil", &[], &[]), Value::Nil);
    assert_eq!(ev(&mut c, "return", &[], &[]), Value::Nil);
    assert_eq!(
        ev(&mut c, "return {1, 2, 3, 'ciao', {1, 2}}", &[], &[]),
        Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3), bulk("ciao"), Value::Array(vec![Value::Int(1), Value::Int(2)])])
    );
    // An array stops at its first nil; false inside an array is a null.
    assert_eq!(ev(&mut c, "return {1, nil, 3}", &[], &[]), Value::Array(vec![Value::Int(1)]));
    assert_eq!(ev(&mut c, "return {1, false, 3}", &[], &[]), Value::Array(vec![Value::Int(1), Value::Nil, Value::Int(3)]));
    assert_eq!(ev(&mut c, "return {}", &[], &[]), Value::Array(vec![]));
    // Status and error tables; err wins over ok.
    assert_eq!(ev(&mut c, "return {ok = 'fine'}", &[], &[]), Value::SimpleString("fine".into()));
    assert_eq!(ev_err(&mut c, "return {err = 'My Error'}", &[], &[]), "My Error");
    assert_eq!(ev_err(&mut c, "return {ok = 'a', err = 'MY b'}", &[], &[]), "MY b");
    // A non-string err or ok is just a table (an empty array).
    assert_eq!(ev(&mut c, "return {err = 3}", &[], &[]), Value::Array(vec![]));
    // Binary strings survive.
    assert_eq!(ev(&mut c, "return string.char(0, 1, 13, 10, 255)", &[], &[]), Value::BulkString(vec![0, 1, 13, 10, 255]));
}

#[test]
fn lua_replies_on_the_wire() {
    let s = Server::start(&[]);
    // Errors and statuses as Redis writes them: the err text as given, CR/LF made spaces.
    wire(&s, &[b"EVAL", b"return {err='-My Error'}", b"0"], b"--My Error\r\n");
    wire(&s, &[b"EVAL", b"return {err='a\\r\\nb'}", b"0"], b"-a  b\r\n");
    wire(&s, &[b"EVAL", b"return {ok='a\\r\\nb'}", b"0"], b"+a  b\r\n");
    wire(&s, &[b"EVAL", b"return {err=''}", b"0"], b"-\r\n");
    wire(&s, &[b"EVAL", b"return {1, {err='x'}, 2}", b"0"], b"*3\r\n:1\r\n-x\r\n:2\r\n");
    // RESP2: double is a bulk string, map a flat array, set an array.
    wire(&s, &[b"EVAL", b"return {double=1.5}", b"0"], b"$3\r\n1.5\r\n");
    wire(&s, &[b"EVAL", b"return {map={a=1}}", b"0"], b"*2\r\n$1\r\na\r\n:1\r\n");
    wire(&s, &[b"EVAL", b"return {set={a=true}}", b"0"], b"*1\r\n$1\r\na\r\n");
    // A table that contains itself ends in an error deep down instead of recursing forever.
    let expected: Vec<u8> = b"*1\r\n".repeat(1000).into_iter().chain(b"-ERR reached lua stack limit\r\n".iter().copied()).collect();
    wire(&s, &[b"EVAL", b"local t = {} t[1] = t return t", b"0"], &expected);
    wire(&s, &[b"PING"], b"+PONG\r\n");
}

#[test]
fn resp3_client_gets_resp3_types() {
    let (_s, mut c) = start();
    let _: Value = redis::cmd("HELLO").arg(3).query(&mut c).unwrap();
    assert_eq!(ev(&mut c, "return {double=1.5}", &[], &[]), Value::Double(1.5));
    assert_eq!(ev(&mut c, "return {map={a=1}}", &[], &[]), Value::Map(vec![(bulk("a"), Value::Int(1))]));
    assert_eq!(ev(&mut c, "return {set={a=true}}", &[], &[]), Value::Set(vec![bulk("a")]));
    // Without redis.setresp(3), booleans are 1 and null as in RESP2 scripts.
    assert_eq!(ev(&mut c, "return true", &[], &[]), Value::Int(1));
    assert_eq!(ev(&mut c, "return false", &[], &[]), Value::Nil);
    // With it, they are RESP3 booleans.
    assert_eq!(ev(&mut c, "redis.setresp(3) return true", &[], &[]), Value::Boolean(true));
    assert_eq!(ev(&mut c, "redis.setresp(3) return false", &[], &[]), Value::Boolean(false));
}

// ---------------------------------------------------------------- RESP -> Lua

#[test]
fn redis_replies_become_lua_values() {
    let (_s, mut c) = start();
    let k = "{conv}k";
    // Integer reply -> number.
    assert_eq!(ev(&mut c, "return type(redis.call('incr', KEYS[1]))", &[k], &[]), bulk("number"));
    // Bulk -> string.
    assert_eq!(ev(&mut c, "return type(redis.call('get', KEYS[1]))", &[k], &[]), bulk("string"));
    // Null bulk -> false.
    assert_eq!(ev(&mut c, "return type(redis.call('get', KEYS[1]))", &["{conv}missing"], &[]), bulk("boolean"));
    assert_eq!(ev(&mut c, "return redis.call('get', KEYS[1]) == false", &["{conv}missing"], &[]), Value::Int(1));
    // Status -> {ok = ...}.
    assert_eq!(ev(&mut c, "return redis.call('set', KEYS[1], 'v')['ok']", &[k], &[]), bulk("OK"));
    assert_eq!(ev(&mut c, "return redis.call('set', KEYS[1], 'v')", &[k], &[]), Value::Okay);
    assert_eq!(ev(&mut c, "return redis.call('ping')['ok']", &[], &[]), bulk("PONG"));
    // Arrays, with nulls as false.
    assert_eq!(
        ev(&mut c, "local r = redis.call('mget', KEYS[1], KEYS[2]) return {#r, type(r[2]), r[1]}", &[k, "{conv}missing"], &[]),
        Value::Array(vec![Value::Int(2), bulk("boolean"), bulk("v")])
    );
    // Error -> {err = ...} through pcall.
    assert_eq!(ev(&mut c, "return redis.pcall('incr', KEYS[1])['err']", &[k], &[]), bulk("ERR value is not an integer or out of range"));
    // RESP3 forms after redis.setresp(3): null is nil, doubles and pairs keep their types.
    assert_eq!(ev(&mut c, "redis.setresp(3) return type(redis.call('get', KEYS[1]))", &["{conv}missing"], &[]), bulk("nil"));
    ev(&mut c, "return redis.call('zadd', KEYS[1], 1.5, 'a')", &["{conv}z"], &[]);
    assert_eq!(ev(&mut c, "return redis.call('zscore', KEYS[1], 'a')", &["{conv}z"], &[]), bulk("1.5"));
    assert_eq!(
        ev(&mut c, "redis.setresp(3) return tostring(redis.call('zscore', KEYS[1], 'a')['double'])", &["{conv}z"], &[]),
        bulk("1.5")
    );
    assert_eq!(
        ev(&mut c, "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", &["{conv}z"], &[]),
        Value::Array(vec![bulk("a"), bulk("1.5")])
    );
    assert_eq!(
        ev(
            &mut c,
            "redis.setresp(3) local r = redis.call('zrange', KEYS[1], 0, -1, 'withscores') return {r[1][1], r[1][2]}",
            &["{conv}z"],
            &[]
        ),
        // The score comes back as {double = 1.5}, which RESP2 shows as a bulk string.
        Value::Array(vec![bulk("a"), bulk("1.5")])
    );
}

#[test]
fn lua_numbers_as_command_arguments() {
    let (_s, mut c) = start();
    let k = "{num}k";
    // Redis 7.0 formats them with %.17g.
    for (n, stored) in [("3.7", "3.7000000000000002"), ("12", "12"), ("-0.5", "-0.5"), ("1e20", "1e+20"), ("0.1", "0.10000000000000001")] {
        ev(&mut c, &format!("return redis.call('set', KEYS[1], {n})"), &[k], &[]);
        assert_eq!(q::<String>(&mut c, &["GET", k]), stored, "{n}");
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn call_raises_and_pcall_returns_errors() {
    let (_s, mut c) = start();
    let k = "{err}str";
    q::<()>(&mut c, &["SET", k, "abc"]);
    let body = "return redis.call('incr', KEYS[1])";
    let suffix = at(&mut c, body, 1);
    assert_eq!(ev_err(&mut c, body, &[k], &[]), format!("ERR value is not an integer or out of range{suffix}"));
    // pcall returns the error as a table: the reply is the bare error.
    assert_eq!(ev_err(&mut c, "return redis.pcall('incr', KEYS[1])", &[k], &[]), "ERR value is not an integer or out of range");
    // Lua's pcall around redis.call gives the message as a string.
    assert_eq!(
        ev(&mut c, "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return {tostring(ok), type(e), e}", &[k], &[]),
        Value::Array(vec![bulk("false"), bulk("string"), bulk("ERR value is not an integer or out of range")])
    );
    // The line is the one that raised.
    let body = "local x = 1\nlocal y = 2\nreturn redis.call('nosuch')";
    let suffix = at(&mut c, body, 3);
    assert_eq!(ev_err(&mut c, body, &[], &[]), format!("ERR Unknown Redis command called from script{suffix}"));
    let cases: &[(&str, &str)] = &[
        ("return redis.call('get')", "ERR Wrong number of args calling Redis command from script"),
        ("return redis.call('multi')", "ERR This Redis command is not allowed from script"),
        ("return redis.call('eval', 'return 1', 0)", "ERR This Redis command is not allowed from script"),
        ("return redis.call('subscribe', 'ch')", "ERR This Redis command is not allowed from script"),
        ("return redis.call('client', 'id')", "ERR This Redis command is not allowed from script"),
        ("return redis.call()", "ERR Please specify at least one argument for this redis lib call"),
        ("return redis.call('get', {})", "ERR Lua redis lib command arguments must be strings or integers"),
        ("return redis.call('set', 'k', true)", "ERR Lua redis lib command arguments must be strings or integers"),
        ("return redis.sha1hex()", "ERR wrong number of arguments"),
        ("return redis.log(1)", "ERR redis.log() requires two arguments or more."),
        ("return redis.log('x', 1)", "ERR First argument must be a number (log level)."),
        ("return redis.log(7, 1)", "ERR Invalid debug level."),
        ("return redis.setresp(4)", "ERR RESP version must be 2 or 3."),
        ("error({err = 'MY x'})", "MY x"),
        ("error(redis.error_reply('MY x'))", "MY x"),
        ("error('x', 0)", "ERR x"),
        ("error('boom')", "ERR user_script:1: boom"),
        ("error(5)", "ERR user_script:1: 5"),
        ("local y = nil + 1", "ERR user_script:1: attempt to perform arithmetic on a nil value"),
    ];
    for (body, msg) in cases {
        let suffix = at(&mut c, body, 1);
        assert_eq!(ev_err(&mut c, body, &[], &[]), format!("{msg}{suffix}"), "{body}");
    }
    // pcall returns errors of the lib calls instead of raising them.
    assert_eq!(ev_err(&mut c, "return redis.pcall('nosuch')", &[], &[]), "ERR Unknown Redis command called from script");
    assert_eq!(ev_err(&mut c, "return redis.pcall()", &[], &[]), "ERR Please specify at least one argument for this redis lib call");
    assert_eq!(ev(&mut c, "return type(redis.pcall('nosuch'))", &[], &[]), bulk("table"));
    // pcall over error() with a table gives its message; a plain error keeps its position.
    assert_eq!(ev(&mut c, "local ok, e = pcall(function() error({err='x'}) end) return e", &[], &[]), bulk("x"));
    assert_eq!(ev(&mut c, "local ok, e = pcall(function() error('plain') end) return e", &[], &[]), bulk("user_script:1: plain"));
    // Other errors than the command's answer the same way as redis-server.
    assert_eq!(
        ev_err(&mut c, "syntax error here", &[], &[]),
        "ERR Error compiling script (new function): user_script:1: '=' expected near 'error'"
    );
    assert_eq!(
        ev_err(&mut c, "return redis.call('zadd', KEYS[1], 1, 'a')", &[k], &[]),
        format!(
            "WRONGTYPE Operation against a key holding the wrong kind of value{}",
            at(&mut c, "return redis.call('zadd', KEYS[1], 1, 'a')", 1)
        )
    );
}

#[test]
fn error_reply_and_status_reply() {
    let (_s, mut c) = start();
    assert_eq!(ev_err(&mut c, "return redis.error_reply('x')", &[], &[]), "ERR x");
    assert_eq!(ev_err(&mut c, "return redis.error_reply('ERR x')", &[], &[]), "ERR x");
    assert_eq!(ev_err(&mut c, "return redis.error_reply('MY x')", &[], &[]), "MY x");
    assert_eq!(ev_err(&mut c, "return redis.error_reply('-X')", &[], &[]), "ERR X");
    assert_eq!(ev_err(&mut c, "return redis.error_reply(5)", &[], &[]), "ERR wrong number or type of arguments");
    assert_eq!(ev(&mut c, "return redis.error_reply('MY x')['err']", &[], &[]), bulk("MY x"));
    assert_eq!(ev(&mut c, "return redis.status_reply('FINE')", &[], &[]), Value::SimpleString("FINE".into()));
    assert_eq!(ev(&mut c, "return redis.status_reply('FINE')['ok']", &[], &[]), bulk("FINE"));
    assert_eq!(ev_err(&mut c, "return redis.status_reply()", &[], &[]), "ERR wrong number or type of arguments");
    assert_eq!(ev(&mut c, "return redis.sha1hex('')", &[], &[]), bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    assert_eq!(ev(&mut c, "return redis.sha1hex(1)", &[], &[]), bulk("356a192b7913b04c54574d18c28d46e6395428ab"));
    assert_eq!(
        ev(&mut c, "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", &[], &[]),
        Value::Array(vec![Value::Int(0), Value::Int(1), Value::Int(2), Value::Int(3)])
    );
    assert_eq!(ev(&mut c, "return redis.log(redis.LOG_WARNING, 'from a script', 1)", &[], &[]), Value::Nil);
}

// ---------------------------------------------------------------- KEYS, ARGV, EVAL's arguments

#[test]
fn keys_and_argv() {
    let (_s, mut c) = start();
    assert_eq!(
        ev(&mut c, "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", &["{t}a", "{t}b"], &["x", "y"]),
        Value::Array(vec![bulk("{t}a"), bulk("{t}b"), bulk("x"), bulk("y"), Value::Int(2), Value::Int(2)])
    );
    assert_eq!(ev(&mut c, "return {#KEYS, #ARGV}", &[], &[]), Value::Array(vec![Value::Int(0), Value::Int(0)]));
    // Binary arguments arrive intact.
    let v: Vec<u8> = redis::cmd("EVAL").arg("return ARGV[1]").arg(0).arg(&b"a\0b\r\n\xff"[..]).query(&mut c).unwrap();
    assert_eq!(v, b"a\0b\r\n\xff");
    assert_eq!(err(&mut c, &["EVAL", "return 1", "2", "a"]), "ERR Number of keys can't be greater than number of args");
    assert_eq!(err(&mut c, &["EVAL", "return 1", "-1"]), "ERR Number of keys can't be negative");
    assert_eq!(err(&mut c, &["EVAL", "return 1", "x"]), "ERR value is not an integer or out of range");
    assert_eq!(err(&mut c, &["EVAL", "return 1"]), "ERR wrong number of arguments for 'eval' command");
    assert_eq!(err(&mut c, &["EVALSHA", "abc"]), "ERR wrong number of arguments for 'evalsha' command");
}

#[test]
fn writes_and_select_inside_scripts() {
    let (_s, mut c) = start();
    let body = "redis.call('set', KEYS[1], ARGV[1]) redis.call('incrby', KEYS[2], ARGV[2]) return redis.call('get', KEYS[2])";
    assert_eq!(ev(&mut c, body, &["{w}a", "{w}n"], &["hello", "5"]), bulk("5"));
    assert_eq!(ev(&mut c, body, &["{w}a", "{w}n"], &["hello", "5"]), bulk("10"));
    assert_eq!(q::<String>(&mut c, &["GET", "{w}a"]), "hello");
    // SELECT changes the database of the rest of the script only.
    assert_eq!(
        ev(&mut c, "redis.call('select', 3) redis.call('set', KEYS[1], 'in3') return redis.call('get', KEYS[1])", &["{w}sel"], &[]),
        bulk("in3")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "{w}sel"]), None);
    q::<()>(&mut c, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut c, &["GET", "{w}sel"]), "in3");
    q::<()>(&mut c, &["SELECT", "0"]);
    let body = "return redis.call('select', 20)";
    let suffix = at(&mut c, body, 1);
    assert_eq!(ev_err(&mut c, body, &[], &[]), format!("ERR DB index is out of range{suffix}"));
    // Blocking commands are refused in scripts, as in Redis 7.0.
    let body = "return redis.call('bzpopmin', KEYS[1], 0)";
    let suffix = at(&mut c, body, 1);
    assert_eq!(ev_err(&mut c, body, &["{w}empty"], &[]), format!("ERR This Redis command is not allowed from script{suffix}"));
    // EVAL inside MULTI runs at EXEC.
    q::<()>(&mut c, &["MULTI"]);
    assert_eq!(q::<String>(&mut c, &["EVAL", "return redis.call('incr', KEYS[1])", "1", "{w}m"]), "QUEUED");
    assert_eq!(q::<String>(&mut c, &["EVAL", "return redis.call('incr', KEYS[1])", "1", "{w}m"]), "QUEUED");
    assert_eq!(q::<Vec<i64>>(&mut c, &["EXEC"]), vec![1, 2]);
}

#[test]
fn eval_ro_and_no_writes_refuse_writes() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "{ro}k", "v"]);
    let got: String = redis::cmd("EVAL_RO").arg("return redis.call('get', KEYS[1])").arg(1).arg("{ro}k").query(&mut c).unwrap();
    assert_eq!(got, "v");
    let body = "return redis.call('set', KEYS[1], 'w')";
    let suffix = at(&mut c, body, 1);
    let e = redis::cmd("EVAL_RO").arg(body).arg(1).arg("{ro}k").query::<Value>(&mut c).unwrap_err();
    assert_eq!(error_text(&e), format!("ERR Write commands are not allowed from read-only scripts.{suffix}"));
    let sha1 = q::<String>(&mut c, &["SCRIPT", "LOAD", body]);
    let e = redis::cmd("EVALSHA_RO").arg(&sha1).arg(1).arg("{ro}k").query::<Value>(&mut c).unwrap_err();
    assert_eq!(error_text(&e), format!("ERR Write commands are not allowed from read-only scripts.{suffix}"));
    assert_eq!(q::<String>(&mut c, &["GET", "{ro}k"]), "v");
    // A shebang with flags=no-writes makes EVAL read-only; line numbers count the shebang.
    let body = "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'w')";
    let suffix = at(&mut c, body, 2);
    assert_eq!(ev_err(&mut c, body, &["{ro}k"], &[]), format!("ERR Write commands are not allowed from read-only scripts.{suffix}"));
    assert_eq!(ev(&mut c, "#!lua\nreturn 1", &[], &[]), Value::Int(1));
    assert_eq!(ev_err(&mut c, "#!python\nreturn 1", &[], &[]), "ERR Unexpected engine in script shebang: #!python");
    assert_eq!(ev_err(&mut c, "#!lua flags=bad\nreturn 1", &[], &[]), "ERR Unexpected flag in script shebang: bad");
    assert_eq!(ev_err(&mut c, "#!lua name=x\nreturn 1", &[], &[]), "ERR Unknown lua shebang option: name=x");
    assert_eq!(ev_err(&mut c, "#!lua", &[], &[]), "ERR Invalid script shebang");
}

// ---------------------------------------------------------------- sandbox

#[test]
fn sandbox() {
    let (_s, mut c) = start();
    for name in ["os", "io", "loadfile", "dofile", "require", "print", "debug", "setfenv", "getfenv", "module", "package"] {
        let body = format!("return {name}");
        let suffix = at(&mut c, &body, 1);
        assert_eq!(
            ev_err(&mut c, &body, &[], &[]),
            format!("ERR user_script:1: Script attempted to access nonexistent global variable '{name}'{suffix}")
        );
    }
    let suffix = at(&mut c, "x = 1", 1);
    assert_eq!(ev_err(&mut c, "x = 1", &[], &[]), format!("ERR user_script:1: Attempt to modify a readonly table{suffix}"));
    let suffix = at(&mut c, "function f() end", 1);
    assert_eq!(ev_err(&mut c, "function f() end", &[], &[]), format!("ERR user_script:1: Attempt to modify a readonly table{suffix}"));
    for body in ["_G.x = 1", "redis.call = nil", "string.rep = nil", "math.pi = 3"] {
        let suffix = at(&mut c, body, 1);
        assert_eq!(ev_err(&mut c, body, &[], &[]), format!("ERR user_script:1: Attempt to modify a readonly table{suffix}"), "{body}");
    }
    for body in ["rawset(_G, 'x', 1)", "setmetatable(_G, nil)", "return setmetatable(string, {})"] {
        let suffix = at(&mut c, body, 1);
        assert_eq!(ev_err(&mut c, body, &[], &[]), format!("ERR Attempt to modify a readonly table{suffix}"), "{body}");
    }
    // Nothing of that stuck: the libraries still work, and locals are fine.
    assert_eq!(ev(&mut c, "return string.rep('a', 3) .. ('b'):upper()", &[], &[]), bulk("aaaB"));
    assert_eq!(ev(&mut c, "local function f(x) return x * 2 end local t = {} t.v = f(21) return t.v", &[], &[]), Value::Int(42));
    assert_eq!(ev(&mut c, "return loadstring('return 1 + 1')()", &[], &[]), Value::Int(2));
    assert_eq!(ev(&mut c, "return loadstring(string.dump(function() return 1 end))", &[], &[]), Value::Nil);
    assert_eq!(
        ev(&mut c, "return {type(string), type(table), type(math), type(coroutine), type(redis)}", &[], &[]),
        Value::Array(vec![bulk("table"); 5])
    );
}

#[test]
fn math_random_is_rand48_as_redis() {
    let s = Server::start(&[]);
    // Each shard has its own generator, starting where Redis starts: the same sequence on every start.
    for shard in 0..2 {
        let mut c = client_on(&s, shard);
        let k = key_on(shard, "rnd");
        assert_eq!(
            ev(&mut c, "return {math.random(100), math.random(100), math.random(1000000)}", &[&k], &[]),
            Value::Array(vec![Value::Int(40), Value::Int(85), Value::Int(353337)])
        );
        assert_eq!(
            ev(&mut c, "return {math.random(100), math.random(100)}", &[&k], &[]),
            Value::Array(vec![Value::Int(45), Value::Int(32)])
        );
        assert_eq!(
            ev(&mut c, "math.randomseed(1) return {math.random(100), math.random(100)}", &[&k], &[]),
            Value::Array(vec![Value::Int(5), Value::Int(46)])
        );
    }
    let mut c = s.client();
    let body = "return math.random(0)";
    let suffix = at(&mut c, body, 1);
    assert_eq!(ev_err(&mut c, body, &[], &[]), format!("ERR user_script:1: bad argument #1 to 'random' (interval is empty){suffix}"));
    assert_eq!(ev(&mut c, "local ok, e = pcall(math.random, 0) return e", &[], &[]), bulk("bad argument #1 to '?' (interval is empty)"));
}

// ---------------------------------------------------------------- the script cache

#[test]
fn evalsha_and_script_commands_across_shards() {
    let s = Server::start(&["--migrate-connections", "no"]);
    let (k0, k1) = (key_on(0, "c"), key_on(1, "c"));
    let mut c = s.client();
    let body = "return 'cached ' .. KEYS[1]";
    let sha1 = q::<String>(&mut c, &["SCRIPT", "LOAD", body]);
    assert_eq!(sha1, sha(&mut c, body));
    assert_eq!(q::<String>(&mut c, &["SCRIPT", "LOAD", "return 1"]), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    // Loaded on every shard: EVALSHA works whichever shard owns the key.
    for k in [&k0, &k1] {
        assert_eq!(q::<String>(&mut c, &["EVALSHA", &sha1, "1", k]), format!("cached {k}"));
        assert_eq!(q::<String>(&mut c, &["EVALSHA", &sha1.to_uppercase(), "1", k]), format!("cached {k}"));
    }
    // EVAL caches on the shard that ran it, and EVALSHA finds it from any shard.
    let body2 = "return 'evaled ' .. KEYS[1]";
    let sha2 = sha(&mut c, body2);
    assert_eq!(q::<Vec<i64>>(&mut c, &["SCRIPT", "EXISTS", &sha2]), vec![0]);
    assert_eq!(err(&mut c, &["EVALSHA", &sha2, "1", &k1]), NOSCRIPT);
    assert_eq!(q::<String>(&mut c, &["EVAL", body2, "1", &k0]), format!("evaled {k0}"));
    assert_eq!(q::<String>(&mut c, &["EVALSHA", &sha2, "1", &k1]), format!("evaled {k1}"));
    for shard in 0..2 {
        let mut on = client_on(&s, shard);
        assert_eq!(q::<Vec<i64>>(&mut on, &["SCRIPT", "EXISTS", &sha1, &sha2, &"f".repeat(40)]), vec![1, 1, 0]);
        assert_eq!(q::<String>(&mut on, &["EVALSHA", &sha2, "1", "{x}"]), "evaled {x}");
    }
    assert_eq!(err(&mut c, &["EVALSHA", "abc", "0"]), NOSCRIPT);
    assert_eq!(err(&mut c, &["EVALSHA", &"f".repeat(40), "0"]), NOSCRIPT);
    // SCRIPT FLUSH empties every shard.
    assert_eq!(q::<String>(&mut c, &["SCRIPT", "FLUSH"]), "OK");
    assert_eq!(q::<Vec<i64>>(&mut c, &["SCRIPT", "EXISTS", &sha1, &sha2]), vec![0, 0]);
    for k in [&k0, &k1] {
        assert_eq!(err(&mut c, &["EVALSHA", &sha1, "1", k]), NOSCRIPT);
        assert_eq!(err(&mut c, &["EVALSHA", &sha2, "1", k]), NOSCRIPT);
    }
    assert_eq!(q::<String>(&mut c, &["SCRIPT", "FLUSH", "ASYNC"]), "OK");
    assert_eq!(q::<String>(&mut c, &["SCRIPT", "FLUSH", "sync"]), "OK");
    assert_eq!(err(&mut c, &["SCRIPT", "FLUSH", "foo"]), "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    assert_eq!(err(&mut c, &["SCRIPT", "FLUSH", "a", "b"]), "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    assert_eq!(err(&mut c, &["SCRIPT", "EXISTS"]), "ERR wrong number of arguments for 'script|exists' command");
    assert_eq!(err(&mut c, &["SCRIPT", "LOAD"]), "ERR wrong number of arguments for 'script|load' command");
    assert_eq!(err(&mut c, &["SCRIPT"]), "ERR wrong number of arguments for 'script' command");
    assert_eq!(err(&mut c, &["SCRIPT", "foo"]), "ERR unknown subcommand 'foo'. Try SCRIPT HELP.");
    assert_eq!(
        err(&mut c, &["SCRIPT", "LOAD", "syntax error"]),
        "ERR Error compiling script (new function): user_script:1: '=' expected near 'error'"
    );
    assert_eq!(err(&mut c, &["SCRIPT", "KILL"]), NOTBUSY);
    let help = q::<Vec<String>>(&mut c, &["SCRIPT", "HELP"]);
    assert_eq!(help[0], "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    assert_eq!(help.len(), 17);
}

// ---------------------------------------------------------------- bit, cjson, cmsgpack

/// Scripts over the `bit`, `cjson` and `cmsgpack` libraries: results,
/// corner cases and error messages. (One known difference is left out:
/// `cjson.encode(-0.0)` writes `0`, as the Lua binding reads -0.0 as the integer 0.)
const LIBRARY_CASES: &[&str] = &[
    r#"return cjson.encode({1,2,'a/b',{x=1}, true, cjson.null, 1.5, 1e20, 0.1})"#,
    r#"return cjson.encode({[1]=1,[5]=2})"#,
    r#"return cjson.encode({[1]=1,[20]=2})"#,
    r#"return cjson.encode(function() end)"#,
    r#"return cjson.encode(0/0)"#,
    r#"return cjson.encode({})"#,
    r#"return cjson.encode('\1\127\"\\\8\9\10\12\13 x')"#,
    r#"local t = cjson.decode('[1,2,{"a":null},"\\u00e9x"]') return {t[1], t[3].a == cjson.null, t[4], type(t[3].a)}"#,
    r#"return cjson.decode('[1,')"#,
    r#"return cjson.decode('{"a":1} x')"#,
    r#"return cjson.decode('')"#,
    r#"return cjson.decode('{"a" 1}')"#,
    r#"return cjson.decode('{1:2}')"#,
    r#"return cjson.decode('[1 2]')"#,
    r#"return cjson.decode('"abc')"#,
    r#"return cjson.decode('"\\q"')"#,
    r#"return cjson.decode('01')"#,
    r#"return cjson.decode('-')"#,
    r#"return cjson.decode('1.5e3')"#,
    r#"return cjson.decode('{"a":[1,2,{"b":"c"}]}').a[3].b"#,
    r#"return cjson.decode('"\\ud83d\\ude00"')"#,
    r#"return cjson.decode('[]')[1]"#,
    r#"return cjson.encode(cjson.decode('{"x":[]}'))"#,
    r#"return cjson.encode({[true]=1})"#,
    r#"return cjson.encode({a={b={}}})"#,
    r#"return cjson.encode(12345678901234567)"#,
    r#"return cjson.encode(1, 2)"#,
    r#"return cjson.encode()"#,
    r#"return cjson.decode(123)"#,
    r#"return cjson.decode({})"#,
    r#"return cjson.encode(1/3)"#,
    r#"return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision()}"#,
    r#"return cjson.encode(cjson.decode('[[[[1]]]]'))"#,
    r#"return cjson.decode('nan') ~= cjson.decode('nan')"#,
    r#"return cjson.decode('true')"#,
    r#"return cjson.decode(' null ') == cjson.null"#,
    r#"return cjson.encode({1, nil, 3})"#,
    r#"return bit.tohex(bit.band(0xff00, 0x0ff0))"#,
    r#"return {bit.tobit(0xffffffff), bit.bnot(0), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 12), bit.ror(0x12345678, 12), bit.bswap(0x12345678), bit.bxor(1,2,4,8)}"#,
    r#"return {bit.tohex(-1), bit.tohex(255, -4), bit.tohex(255, 2), bit.tobit(2^40 + 3.7), bit.tohex(65535, 0)}"#,
    r#"return bit.band('x')"#,
    r#"return bit.band()"#,
    r#"return bit.band('12', 10)"#,
    r#"return bit.tobit(2.5) + bit.tobit(3.5) * 10"#,
    r#"return cmsgpack.pack({1,2,'abc'}, 3.5, -1, 300, {a=1}, nil, true, 2^40, -200, -40000, -3000000000, 70000, 5000000000, 0.1, string.rep('x', 40), string.rep('y', 300))"#,
    r#"local a,b,c = cmsgpack.unpack(cmsgpack.pack(1,'x',{2,3})) return {a,b,c[2]}"#,
    r#"return cmsgpack.unpack('\196')"#,
    r#"return cmsgpack.unpack('\205\1')"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1,2), 0)}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1,2), 1)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 0)}"#,
    r#"return cmsgpack.pack()"#,
    r#"return cmsgpack.unpack(cmsgpack.pack({{{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}}))"#,
    r#"local t = cmsgpack.unpack(cmsgpack.pack({x={1,2}, y='z'})) return {t.x[2], t.y}"#,
    r#"return {cmsgpack.unpack(cmsgpack.pack(-0.5, 1e300, -7, 2^63, -2^63))}"#,
    r#"return cmsgpack.pack(string.rep('z', 70000)):len()"#,
    r#"cjson.x = 1"#,
    r#"bit.band = nil"#,
    r#"return type(cmsgpack.pack)"#,
    r#"return cjson.decode('1e')"#,
    r#"return cjson.decode('1.')"#,
    r#"return cjson.decode('"\\u12"')"#,
    r#"return cjson.decode('[1,2')"#,
    r#"return cjson.decode('{"a":1,}')"#,
    r#"return cjson.decode('{"a":1')"#,
    r#"return cjson.decode('tru')"#,
    r#"return cjson.decode('-inf') < 0"#,
    r#"return cjson.encode({a=1,b=2}):len()"#,
    r#"return cjson.encode({{}, {1}, {a={}}})"#,
    r#"return cjson.encode('\128\255')"#,
    r#"return cjson.decode('"\128"')"#,
    r#"return cjson.encode(1e-5)"#,
    r#"return cjson.encode(123456.789)"#,
    r#"return cjson.encode(2^53)"#,
    r#"cjson.encode_max_depth(2) local ok, e = pcall(cjson.encode, {{{1}}}) cjson.encode_max_depth(1000) return e"#,
    r#"return {cjson.encode_sparse_array(true), cjson.encode({[1]=1,[20]=2}), cjson.encode_sparse_array(false)}"#,
    r#"cjson.encode_number_precision(3) local r = cjson.encode(1/3) cjson.encode_number_precision(14) return r"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 0, 0)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 0, 1)}"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3))}"#,
    r#"return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 9)}"#,
    r#"return cmsgpack.unpack('\129\192\1')"#,
    r#"return cmsgpack.pack(2^63, 2^62, -2^63, 0/0, 1/0)"#,
    r#"cjson.encode_invalid_numbers(true) local r = cjson.encode({0/0, 1/0, -1/0}) cjson.encode_invalid_numbers(false) return r"#,
    r#"return cjson.decode('"\\u+123"')"#,
    r#"return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 1)}"#,
];

#[test]
fn lua_libraries_answer_as_in_redis() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server is not installed: skipped");
        return;
    };
    let s = Server::start(&[]);
    let (mut theirs, mut ours) = (redis.client(), s.client());
    let answer = |c: &mut Connection, body: &str| match eval(c, body, &[], &[]) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {}", error_text(&e)),
    };
    for body in LIBRARY_CASES {
        assert_eq!(answer(&mut ours, body), answer(&mut theirs, body), "{body}");
    }
    // The libraries are there on every shard, and their state is per shard as Redis's is per server.
    let v = ev(&mut ours, "return cjson.decode(ARGV[1]).k", &[&key_on(1, "k")], &[r#"{"k":"v"}"#]);
    assert_eq!(v, bulk("v"));
}

/// Mutations of `seed`: bytes flipped, dropped, repeated or cut.
fn mutations(rng: &mut rand::rngs::StdRng, seed: &[u8], n: usize) -> Vec<Vec<u8>> {
    use rand::Rng;
    (0..n)
        .map(|_| {
            let mut b = seed.to_vec();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..b.len().max(1));
                match rng.gen_range(0..4) {
                    0 if i < b.len() => b[i] = rng.gen(),
                    1 if i < b.len() => {
                        b.remove(i);
                    }
                    2 => b.insert(i.min(b.len()), *seed.get(rng.gen_range(0..seed.len())).unwrap_or(&b'[')),
                    _ => b.truncate(i),
                }
            }
            b
        })
        .collect()
}

#[test]
fn decoders_take_damaged_input_as_errors() {
    use rand::SeedableRng;
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let s = Server::start(&[]);
    let mut c = s.client();
    let json = br#"{"a":[1,2.5e3,-0,"x\u00e9\ud83d\ude00\n",true,false,null,{"b":{}}],"c":[[[]]]}"#;
    let packed: Vec<u8> = {
        let v = ev(
            &mut c,
            "return cmsgpack.pack(cjson.decode(ARGV[1]), 300, -40000, 2^40, 0.1, string.rep('s', 40))",
            &[],
            &[std::str::from_utf8(json).unwrap()],
        );
        redis::from_redis_value(&v).unwrap()
    };
    for (body, seed_input) in [
        ("local ok, r = pcall(cjson.decode, ARGV[1]) if ok then return cjson.encode(r) end return r", &json[..]),
        ("local r = {pcall(cmsgpack.unpack, ARGV[1])} return #r", &packed[..]),
    ] {
        let inputs = mutations(&mut rng, seed_input, 2000);
        let mut pipe = redis::pipe();
        for input in &inputs {
            pipe.cmd("EVAL").arg(body).arg(0).arg(input);
        }
        let replies: Vec<Value> = pipe.query(&mut c).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(replies.len(), inputs.len(), "seed {seed}");
    }
    // Nesting deeper than the stack allows is an error, not a crash.
    let deep: Vec<u8> = std::iter::repeat_n(0x91u8, 100_000).chain([1]).collect();
    let deep = redis::cmd("EVAL").arg("return cmsgpack.unpack(ARGV[1])").arg(0).arg(&deep).query::<Value>(&mut c);
    let e = error_text(&deep.unwrap_err());
    assert!(e.contains("stack overflow (in function mp_decode_to_lua_array)"), "{e}");
    let e = ev_err(
        &mut c,
        "cjson.encode_max_depth(100000) local t = {} local c = t for i = 1, 100000 do c[1] = {} c = c[1] end return cjson.encode(t)",
        &[],
        &[],
    );
    assert!(e.contains("Cannot serialise, excessive nesting (1001)"), "{e}");
    let e = ev_err(&mut c, "cjson.decode_max_depth(100000) return cjson.decode(string.rep('[', 100000))", &[], &[]);
    assert!(e.contains("Found too many nested data structures (1001) at character 1001"), "{e}");
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG", "seed {seed}");
}

// ---------------------------------------------------------------- the shard rule

#[test]
fn a_script_touches_undeclared_keys_when_its_keys_live_on_several_shards() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (k0, k1) = (key_on(0, "x"), key_on(1, "x"));
    // A key the script did not declare and another shard owns is refused, clearly.
    let body = "return redis.call('get', ARGV[1])";
    let suffix = at(&mut c, body, 1);
    let e = ev_err(&mut c, body, &[&k0], &[&k1]);
    assert!(e.starts_with("ERR Script attempted to access a non local key in a cluster node"), "{e}");
    assert!(e.contains("{hash tag}") && e.ends_with(&suffix), "{e}");
    // Undeclared keys of the same shard work (as in Redis Cluster).
    q::<()>(&mut c, &["SET", &key_on(0, "other"), "v"]);
    assert_eq!(ev(&mut c, body, &[&k0], &[&key_on(0, "other")]), bulk("v"));
    // With KEYS on both shards, a key it did not declare, on either shard, is
    // fetched: the script runs again holding it.
    q::<()>(&mut c, &["SET", &key_on(1, "other"), "w"]);
    for (other, want) in [(key_on(0, "other"), bulk("v")), (key_on(1, "other"), bulk("w"))] {
        assert_eq!(ev(&mut c, body, &[&k0, &k1], &[&other]), want);
    }
    // A key drawn from math.random settles: a void run draws nothing.
    let drawn = "local k = 'rk' .. math.random(1000000000) redis.call('set', k, 'drawn') return redis.call('get', k)";
    assert_eq!(ev(&mut c, drawn, &[&k0, &k1], &[]), bulk("drawn"));
    // A script that reaches for another key on every run gives up after a
    // few, and only its last run's writes stay (as after any error).
    let moving = "redis.call('incr', KEYS[1]) return redis.call('get', 'k' .. redis.call('time')[2])";
    let e = ev_err(&mut c, moving, &[&k0, &k1], &[]);
    assert!(e.starts_with("ERR Script attempted to access a key it did not pass in KEYS"), "{e}");
    assert_eq!(q::<i64>(&mut c, &["GET", &k0]), 1, "a void run's write was kept");
    let e = ev_err(&mut c, "return redis.call('scan', 0)", &[&k0, &k1], &[]);
    assert!(e.starts_with("ERR Script attempted to access a key it did not pass in KEYS"), "{e}");
    // Commands that need every shard are refused rather than answered for one shard.
    let e = ev_err(&mut c, "return redis.call('dbsize')", &[&k0], &[]);
    assert!(e.starts_with("ERR This Redis command runs on every shard"), "{e}");
}

/// Scripts over three keys (KEYS[1..3]), with their arguments: Laravel's
/// queue scripts (`Illuminate\Queue\LuaScripts`, without the JSON
/// rewrite of the attempt count), and writes, errors, TTLs and deletions.
const OVER_SHARDS: &[(&str, &[&str])] = &[
    ("redis.call('rpush', KEYS[1], ARGV[1]) redis.call('rpush', KEYS[2], 1)", &["job-a"]),
    ("redis.call('rpush', KEYS[1], ARGV[1]) redis.call('rpush', KEYS[2], 1)", &["job-b"]),
    (
        "local job = redis.call('lpop', KEYS[1]) local reserved = false \
         if (job ~= false) then reserved = job .. ':1' redis.call('zadd', KEYS[2], ARGV[1], reserved) redis.call('lpop', KEYS[3]) end \
         return {job, reserved}",
        &["1700000000"],
    ),
    (
        "local val = redis.call('zrangebyscore', KEYS[2], '-inf', ARGV[1], 'limit', 0, ARGV[2]) \
         if (next(val) ~= nil) then redis.call('zremrangebyrank', KEYS[2], 0, #val - 1) \
         for i = 1, #val, 100 do redis.call('rpush', KEYS[1], unpack(val, i, math.min(i + 99, #val))) \
         for j = i, math.min(i + 99, #val) do redis.call('rpush', KEYS[3], 1) end end end return val",
        &["1800000000", "-1"],
    ),
    ("redis.call('zrem', KEYS[2], ARGV[1]) redis.call('zadd', KEYS[1], ARGV[2], ARGV[1]) return true", &["job-b", "5"]),
    ("redis.call('set', KEYS[3], 'x') return redis.call('incr', KEYS[1])", &[]),
    ("redis.call('set', KEYS[3], 'y', 'EX', 1000) return redis.pcall('incr', KEYS[1])", &[]),
    ("redis.call('expire', KEYS[2], 500) return {redis.call('pttl', KEYS[2]) > 0, redis.call('ttl', KEYS[3]) > 0}", &[]),
    ("return {redis.call('type', KEYS[1]).ok, redis.call('exists', KEYS[2], KEYS[3]), redis.call('persist', KEYS[3])}", &[]),
    ("while redis.call('lpop', KEYS[1]) do end return redis.call('exists', KEYS[1])", &[]),
    ("return redis.call('del', KEYS[1], KEYS[2], KEYS[3])", &[]),
    ("return redis.call('get', KEYS[3])", &[]),
];

/// BullMQ's scripts build job keys from a prefix and an ID they just drew,
/// undeclared: each run that reaches for one ends with nothing written, and
/// the next holds it too, so the writes happen once.
#[test]
fn a_script_over_two_shards_that_builds_keys_runs_once_for_good() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (id, wait) = (key_on(0, "bull:q:id"), key_on(1, "bull:q:wait"));
    let add = "local id = redis.call('incr', KEYS[1]) local job = ARGV[1] .. id \
               redis.call('hset', job, 'data', ARGV[2]) redis.call('lpush', KEYS[2], id) \
               return {id, redis.call('hget', job, 'data')}";
    for n in 1..=20 {
        let reply = ev(&mut c, add, &[&id, &wait], &["bull:q:", &format!("job{n}")]);
        assert_eq!(reply, Value::Array(vec![Value::Int(n), bulk(&format!("job{n}"))]));
    }
    assert_eq!(q::<i64>(&mut c, &["GET", &id]), 20, "a discarded run's INCR was kept");
    assert_eq!(q::<i64>(&mut c, &["LLEN", &wait]), 20);
    for n in 1..=20 {
        assert_eq!(q::<String>(&mut c, &["HGET", &format!("bull:q:{n}"), "data"]), format!("job{n}"));
    }
}

/// A command that writes a key of another database than its key positions
/// name (COPY ... DB) cannot pass a script's check of its keys; on the
/// scratch shard such a write fails the script whole.
#[test]
fn a_script_over_two_shards_that_writes_an_undeclared_key_keeps_nothing() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = (key_on(0, "src"), key_on(1, "dst"));
    q::<()>(&mut c, &["SET", &a, "v"]);
    let body = "redis.call('set', KEYS[2], 'written') return redis.call('copy', KEYS[1], KEYS[2], 'DB', 5)";
    let e = ev_err(&mut c, body, &[&a, &b], &[]);
    assert!(e.contains(&format!("wrote key '{b}' in database 5, which it did not pass in KEYS")), "{e}");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &b]), 0, "a write of the failed script was kept");
    q::<()>(&mut c, &["SELECT", "5"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &b]), 0);
}

/// What a key holds: type, contents and whether it has a TTL.
fn held(c: &mut Connection, k: &str) -> String {
    let kind: String = q(c, &["TYPE", k]);
    let contents = match kind.as_str() {
        "list" => format!("{:?}", q::<Vec<String>>(c, &["LRANGE", k, "0", "-1"])),
        "zset" => format!("{:?}", q::<Vec<String>>(c, &["ZRANGE", k, "0", "-1", "WITHSCORES"])),
        "string" => q::<String>(c, &["GET", k]),
        _ => String::new(),
    };
    format!("{kind} {contents} ttl:{}", q::<i64>(c, &["TTL", k]) > 0)
}

#[test]
fn scripts_over_keys_on_several_shards_answer_and_write_as_on_one() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let apart = [key_on(0, "queue"), key_on(1, "reserved"), key_on(0, "notify")];
    let together = ["{t}queue".to_string(), "{t}reserved".to_string(), "{t}notify".to_string()];
    let mut runs = Vec::new();
    for keys in [&apart, &together] {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut seen = Vec::new();
        for (body, args) in OVER_SHARDS {
            let reply = match eval(&mut c, body, &keys, args) {
                Ok(v) => format!("{v:?}"),
                // Error lines name the script and line, the same for both runs.
                Err(e) => format!("error {}", error_text(&e)),
            };
            let state: Vec<String> = keys.iter().map(|k| held(&mut c, k)).collect();
            seen.push(format!("{body}\n  -> {reply}\n  state {state:?}"));
        }
        runs.push(seen);
    }
    for (a, t) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(a, t, "keys on two shards / under one hash tag");
    }
    // The runs did something: a WRONGTYPE error after a write kept the write, and a list emptied.
    assert!(runs[0].iter().any(|r| r.contains("WRONGTYPE")), "{:#?}", runs[0]);
    // EVAL_RO reads across shards and may not write.
    q::<()>(&mut c, &["MSET", &apart[0], "1"]);
    q::<()>(&mut c, &["SET", &apart[1], "2"]);
    let mut ro = redis::cmd("EVAL_RO");
    ro.arg("return redis.call('get', KEYS[1]) .. redis.call('get', KEYS[2])").arg(2).arg(&apart[0]).arg(&apart[1]);
    assert_eq!(ro.query::<String>(&mut c).unwrap(), "12");
    let mut ro = redis::cmd("EVAL_RO");
    ro.arg("return redis.call('set', KEYS[1], 3)").arg(2).arg(&apart[0]).arg(&apart[1]);
    let e = error_text(&ro.query::<Value>(&mut c).unwrap_err());
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    // EVALSHA of a loaded script.
    let sha: String = q(&mut c, &["SCRIPT", "LOAD", "return redis.call('incr', KEYS[1]) + redis.call('incr', KEYS[2])"]);
    assert_eq!(q::<i64>(&mut c, &["EVALSHA", &sha, "2", &apart[0], &apart[1]]), 5);
}

#[test]
fn a_script_over_two_shards_writes_back_only_the_keys_it_wrote() {
    let s = Server::start(&[]);
    let (mut c, mut watcher) = (s.client(), s.client());
    let (h, set) = (key_on(0, "hash"), key_on(1, "set"));
    q::<()>(&mut c, &["HSET", &h, "f1", "v1", "f2", "v2", "f3", "v3", "f4", "v4", "f5", "v5"]);
    q::<()>(&mut c, &["SADD", &set, "m1", "m2", "m3", "m4", "m5"]);
    let read = "return {#redis.call('hgetall', KEYS[1]), redis.call('scard', KEYS[2])}";
    let write = "redis.call('hset', KEYS[1], 'f6', 'v6') return redis.call('sadd', KEYS[2], 'm6')";
    // Scripts that only read, EVAL or EVAL_RO, leave the keys as they were: a WATCH on them holds.
    let exec = |w: &mut Connection| -> Value {
        q::<()>(w, &["MULTI"]);
        q::<()>(w, &["SET", &key_on(0, "flag"), "1"]);
        q(w, &["EXEC"])
    };
    q::<()>(&mut watcher, &["WATCH", &h, &set]);
    assert_eq!(ev(&mut c, read, &[&h, &set], &[]), Value::Array(vec![Value::Int(10), Value::Int(5)]));
    let mut ro = redis::cmd("EVAL_RO");
    ro.arg(read).arg(2).arg(&h).arg(&set);
    assert_eq!(ro.query::<Value>(&mut c).unwrap(), Value::Array(vec![Value::Int(10), Value::Int(5)]));
    assert_eq!(exec(&mut watcher), Value::Array(vec![Value::Okay]), "a read-only script touched a watched key");
    // A script that writes writes back, and the WATCH sees it.
    q::<()>(&mut watcher, &["WATCH", &h, &set]);
    assert_eq!(ev(&mut c, write, &[&h, &set], &[]), Value::Int(1));
    assert_eq!(exec(&mut watcher), Value::Nil, "a write by a script went unseen by WATCH");
    assert_eq!(q::<i64>(&mut c, &["HLEN", &h]), 6);
    assert_eq!(q::<i64>(&mut c, &["SCARD", &set]), 6);
}

#[test]
fn a_script_over_two_shards_publishes_the_notifications_of_its_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let (k0, k1) = (key_on(0, "n"), key_on(1, "n"));
    let mut sub = s.client();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sub = sub.as_pubsub();
    sub.psubscribe("__keyevent@0__:*").unwrap();
    ev(&mut c, "redis.call('lpush', KEYS[1], 'a') redis.call('set', KEYS[2], 'b', 'EX', 100) return 1", &[&k0, &k1], &[]);
    let mut got = HashSet::new();
    while got.len() < 3 {
        let m = sub.get_message().expect("a notification");
        let key: String = m.get_payload().unwrap();
        got.insert((m.get_channel_name().to_string(), key));
    }
    let want: HashSet<(String, String)> =
        [("lpush", &k0), ("set", &k1), ("expire", &k1)].into_iter().map(|(e, k)| (format!("__keyevent@0__:{e}"), k.clone())).collect();
    assert_eq!(got, want);
}

#[test]
fn scripts_over_two_shards_are_atomic_for_each_other() {
    let s = Server::start(&[]);
    let (a, b) = (key_on(0, "acct"), key_on(1, "acct"));
    let transfer = "redis.call('decrby', KEYS[1], ARGV[1]) redis.call('incrby', KEYS[2], ARGV[1]) return 1";
    let read = "return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let movers: Vec<_> = (0..4)
        .map(|t| {
            let mut c = s.client();
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for i in 0..300 {
                    let (from, to) = if (i + t) % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    ev(&mut c, transfer, &[from, to], &[&(1 + i % 7).to_string()]);
                }
            })
        })
        .collect();
    let reader = {
        let mut c = s.client();
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 100 {
                let mut r = redis::cmd("EVAL_RO");
                r.arg(read).arg(2).arg(&a).arg(&b);
                let v: Vec<Option<i64>> = r.query(&mut c).unwrap();
                assert_eq!(v[0].unwrap_or(0) + v[1].unwrap_or(0), 0, "a read saw half a transfer: {v:?}");
                reads += 1;
            }
            reads
        })
    };
    movers.into_iter().for_each(|m| m.join().unwrap());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() >= 100);
    let mut c = s.client();
    let sum = q::<i64>(&mut c, &["GET", &a]) + q::<i64>(&mut c, &["GET", &b]);
    assert_eq!(sum, 0);
}

#[test]
fn a_script_over_two_shards_keeps_all_or_none_of_its_writes_across_sigkill() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let (k0, k1, list) = (key_on(0, "c"), key_on(1, "c"), key_on(1, "log"));
    let body = "redis.call('incr', KEYS[1]) redis.call('incr', KEYS[2]) return redis.call('rpush', KEYS[3], ARGV[1])";
    let mut acked = 0;
    for round in 0..3 {
        let mut c = s.client();
        let writer = {
            let (k0, k1, list) = (k0.clone(), k1.clone(), list.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while eval(&mut c, body, &[&k0, &k1, &list], &[&n.to_string()]).is_ok() {
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        s.kill();
        acked += writer.join().unwrap();
        s.restart();
        let mut c = s.client();
        let (a, b) = (q::<i64>(&mut c, &["GET", &k0]), q::<i64>(&mut c, &["GET", &k1]));
        let len = q::<i64>(&mut c, &["LLEN", &list]);
        assert!(a == b && b == len, "round {round}: {a} {b} {len}: a script's writes split by the crash");
        assert!(a >= acked && a <= acked + 1, "round {round}: {a} kept, {acked} acknowledged");
        acked = a;
    }
    assert!(acked > 10, "only {acked} scripts ran");
}

// ---------------------------------------------------------------- atomicity and durability

#[test]
fn a_script_writes_all_or_nothing_across_sigkill() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    let body = "for i = 1, tonumber(ARGV[2]) do redis.call('set', KEYS[1] .. ':' .. i, ARGV[1]) redis.call('incr', KEYS[2]) end \
                redis.call('zadd', KEYS[3], ARGV[1], KEYS[1]) return redis.call('get', KEYS[2])";
    for round in 0..10 {
        let (k, n, z) = (format!("{{a}}r{round}"), "{a}count".to_string(), "{a}rounds".to_string());
        let total = ev(&mut c, body, &[&k, &n, &z], &[&round.to_string(), "100"]);
        assert_eq!(total, bulk(&((round + 1) * 100).to_string()));
    }
    // SIGKILL right after the last answer: with appendfsync always, every write of every script is on disk.
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["GET", "{a}count"]), 1000);
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "{a}rounds"]), 10);
    for round in 0..10 {
        let vals: Vec<Option<String>> =
            redis::cmd("MGET").arg((1..=100).map(|i| format!("{{a}}r{round}:{i}")).collect::<Vec<_>>()).query(&mut c).unwrap();
        assert!(vals.iter().all(|v| v.as_deref() == Some(&round.to_string())), "round {round}: {vals:?}");
    }
}

// ---------------------------------------------------------------- busy scripts

/// Connections on `shard` whose reads give up after `timeout`.
fn clients_on(s: &Server, shard: usize, n: usize, timeout: Duration) -> Vec<Connection> {
    (0..n)
        .map(|_| {
            let c = client_on(s, shard);
            c.set_read_timeout(Some(timeout)).unwrap();
            c
        })
        .collect()
}

/// Runs `body` on the shard owning `key` from another thread; returns its answer.
fn eval_in_background(s: &Server, body: &'static str, key: &str) -> std::thread::JoinHandle<RedisResult<Value>> {
    let mut a = s.client();
    a.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let key = key.to_string();
    std::thread::spawn(move || eval(&mut a, body, &[&key], &[]))
}

#[test]
fn script_kill_stops_a_busy_script_and_other_shards_answer_busy_meanwhile() {
    let s = Server::start(&["--busy-reply-threshold", "100", "--migrate-connections", "no"]);
    let busy_key = key_on(1, "busy");
    let mut probes = clients_on(&s, 0, 8, Duration::from_secs(2)).into_iter();
    let mut killer = client_on(&s, 0);
    for body in ["while true do end", "while true do pcall(function() while true do end end) end"] {
        let runner = eval_in_background(&s, body, &busy_key);
        std::thread::sleep(Duration::from_millis(400));
        // Commands for the busy shard are answered BUSY at once by the connection's own shard.
        let mut saw_busy = false;
        for probe in probes.by_ref() {
            let mut probe = probe;
            match redis::cmd("GET").arg(&busy_key).query::<Option<String>>(&mut probe) {
                Err(e) if error_text(&e) == BUSY => {
                    saw_busy = true;
                    break;
                }
                // Sent before the script passed the threshold: it waits for the script; try another connection.
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        assert!(saw_busy, "no BUSY reply while {body} ran");
        // Commands for the connection's own shard still work.
        assert_eq!(q::<String>(&mut killer, &["PING"]), "PONG");
        assert_eq!(q::<String>(&mut killer, &["SCRIPT", "KILL"]), "OK");
        let answer = runner.join().unwrap().unwrap_err();
        let text = error_text(&answer);
        assert!(text.starts_with("ERR Script killed by user with SCRIPT KILL... script: "), "{text}");
        assert!(text.ends_with(", on @user_script:1."), "{text}");
        assert_eq!(q::<Option<String>>(&mut killer, &["GET", &busy_key]), None);
        assert_eq!(err(&mut killer, &["SCRIPT", "KILL"]), NOTBUSY);
    }
}

#[test]
fn a_busy_script_that_wrote_is_unkillable() {
    let s = Server::start(&["--busy-reply-threshold", "100", "--migrate-connections", "no"]);
    let busy_key = key_on(1, "busy");
    let mut killer = client_on(&s, 0);
    let body = "redis.call('set', KEYS[1], 'written') \
                local t = redis.call('time') local start = t[1] * 1000000 + t[2] \
                while true do local n = redis.call('time') if n[1] * 1000000 + n[2] - start > 1500000 then break end end \
                return 'done'";
    let runner = eval_in_background(&s, body, &busy_key);
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let e = err(&mut killer, &["SCRIPT", "KILL"]);
        if e != NOTBUSY || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        reply,
        "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
    );
    assert_eq!(runner.join().unwrap().unwrap(), bulk("done"));
    assert_eq!(q::<String>(&mut killer, &["GET", &busy_key]), "written");
}

#[test]
fn shutdown_stops_an_unkillable_script_and_keeps_none_of_its_writes() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &["--busy-reply-threshold", "100", "--migrate-connections", "no", "--appendfsync", "always"]);
    let busy_key = key_on(1, "busy");
    let mut killer = client_on(&s, 0);
    q::<()>(&mut killer, &["SET", &busy_key, "before"]);
    let runner = eval_in_background(&s, "redis.call('set', KEYS[1], 'during') while true do end", &busy_key);
    let deadline = Instant::now() + Duration::from_secs(10);
    while err(&mut killer, &["SCRIPT", "KILL"]) == NOTBUSY && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(err(&mut killer, &["SCRIPT", "KILL"]).starts_with("UNKILLABLE"));
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<Value>(&mut killer);
    assert!(runner.join().unwrap().is_err());
    assert!(s.stop(), "strand did not exit cleanly after SHUTDOWN");
    s.restart();
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["GET", &busy_key]), "before");
}

#[test]
fn busy_reply_threshold_is_a_config_parameter() {
    let (_s, mut c) = start();
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "busy-reply-threshold"]), vec!["busy-reply-threshold", "5000"]);
    assert_eq!(q::<String>(&mut c, &["CONFIG", "SET", "lua-time-limit", "300"]), "OK");
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "busy-reply-threshold"]), vec!["busy-reply-threshold", "300"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "lua-time-limit"]), vec!["lua-time-limit", "300"]);
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'busy-reply-threshold') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "-1"]),
        "ERR CONFIG SET failed (possibly related to argument 'busy-reply-threshold') - argument must be between 0 and 9223372036854775807 inclusive"
    );
}

// ---------------------------------------------------------------- a job scheduler

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Takes up to ARGV[2] jobs due by ARGV[1] off the schedule, atomically.
const CLAIM: &str = "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]) \
                     for _, job in ipairs(due) do redis.call('ZREM', KEYS[1], job) end \
                     return due";

#[test]
fn scheduler_workers_claim_each_due_job_exactly_once() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let now = now_ms();
    // 300 jobs due in the past, 100 in the future.
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("{sched}jobs");
    for i in 0..400u64 {
        let due = if i < 300 { now - 10_000 + i } else { now + 3_600_000 + i };
        zadd.arg(due).arg(format!("job-{i}"));
    }
    assert_eq!(zadd.query::<i64>(&mut c).unwrap(), 400);
    let sha1 = q::<String>(&mut c, &["SCRIPT", "LOAD", CLAIM]);
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let mut wc = s.client();
            let sha1 = sha1.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let batch = 1 + w % 3;
                    let jobs: Vec<String> =
                        redis::cmd("EVALSHA").arg(&sha1).arg(1).arg("{sched}jobs").arg(now_ms()).arg(batch).query(&mut wc).unwrap();
                    if jobs.is_empty() {
                        return mine;
                    }
                    mine.extend(jobs);
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for job in w.join().unwrap() {
            total += 1;
            assert!(seen.insert(job.clone()), "{job} was claimed twice");
        }
    }
    assert_eq!(total, 300);
    assert_eq!(seen, (0..300).map(|i| format!("job-{i}")).collect::<HashSet<_>>());
    // The future jobs are still scheduled.
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "{sched}jobs"]), 100);
}
