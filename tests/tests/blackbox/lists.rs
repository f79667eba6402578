//! List commands, checked against what redis-server 7.0 answers: LPUSH,
//! RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LINSERT,
//! LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP, and the blocking commands
//! where they have something to serve at once (waiting is in
//! `lists_blocking.rs`). Reply shapes that the `redis` crate folds together
//! (nil, nil array, empty array) are checked on the raw wire in RESP2 and
//! RESP3. Durability: restarts and SIGKILL after every kind of list change
//! bring back exactly the acknowledged lists; a random mix of list commands
//! answers as a real redis-server does, when one is installed.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use redis::{Connection, Value};
use strand_tests::commands::{cmd, err, error_text, q, start};
use strand_tests::raw::Raw;
use strand_tests::{redis_server_available, RedisServer, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn lrange(c: &mut Connection, key: &str) -> Vec<String> {
    q(c, &["LRANGE", key, "0", "-1"])
}

fn exists(c: &mut Connection, key: &str) -> bool {
    q::<i64>(c, &["EXISTS", key]) == 1
}

fn rpush(c: &mut Connection, key: &str, elems: &[&str]) -> i64 {
    let mut args = vec!["RPUSH", key];
    args.extend_from_slice(elems);
    q(c, &args)
}

// ---------------------------------------------------------------- raw replies

// ---------------------------------------------------------------- pushes

#[test]
fn lpush_rpush_order_and_lengths() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(lrange(&mut c, "l"), ["c", "b", "a"]);
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "l", "x", "y"]), 5);
    assert_eq!(lrange(&mut c, "l"), ["c", "b", "a", "x", "y"]);
    assert_eq!(q::<String>(&mut c, &["TYPE", "l"]), "list");
    // Repeated and empty elements are kept.
    assert_eq!(q::<i64>(&mut c, &["rpush", "l", "", "y"]), 7);
    assert_eq!(lrange(&mut c, "l"), ["c", "b", "a", "x", "y", "", "y"]);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 7);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "missing"]), 0);
}

#[test]
fn pushx_only_onto_existing_lists() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "l", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "l", "a", "b"]), 0);
    assert!(!exists(&mut c, "l"));
    rpush(&mut c, "l", &["m"]);
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "l", "a", "b"]), 3);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "l", "y", "z"]), 5);
    assert_eq!(lrange(&mut c, "l"), ["b", "a", "m", "y", "z"]);
}

#[test]
fn binary_elements_round_trip() {
    let (_s, mut c) = start();
    let elem: Vec<u8> = b"a\0b\r\n$3\r\n\xff".to_vec();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let n: i64 = redis::cmd("RPUSH").arg(b"bin\0key").arg(&elem).arg(&big).query(&mut c).unwrap();
    assert_eq!(n, 2);
    let all: Vec<Vec<u8>> = redis::cmd("LRANGE").arg(b"bin\0key").arg(0).arg(-1).query(&mut c).unwrap();
    assert_eq!(all, vec![elem.clone(), big.clone()]);
    let pos: Option<i64> = redis::cmd("LPOS").arg(b"bin\0key").arg(&big).query(&mut c).unwrap();
    assert_eq!(pos, Some(1));
    let popped: Vec<u8> = redis::cmd("LPOP").arg(b"bin\0key").query(&mut c).unwrap();
    assert_eq!(popped, elem);
}

// ---------------------------------------------------------------- pops

#[test]
fn lpop_rpop_single_and_with_count() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "c", "d", "e"]);
    assert_eq!(q::<String>(&mut c, &["LPOP", "l"]), "a");
    assert_eq!(q::<String>(&mut c, &["RPOP", "l"]), "e");
    assert_eq!(q::<Vec<String>>(&mut c, &["LPOP", "l", "2"]), ["b", "c"]);
    rpush(&mut c, "l", &["x", "y"]);
    // RPOP with a count answers the tail first.
    assert_eq!(q::<Vec<String>>(&mut c, &["RPOP", "l", "2"]), ["y", "x"]);
    // More than there is: all of it, and the key is gone.
    assert_eq!(q::<Vec<String>>(&mut c, &["RPOP", "l", "10"]), ["d"]);
    assert!(!exists(&mut c, "l"));
    rpush(&mut c, "l", &["only"]);
    assert_eq!(q::<String>(&mut c, &["LPOP", "l"]), "only");
    assert!(!exists(&mut c, "l"));
}

#[test]
fn pop_reply_shapes_nil_nil_array_empty_array() {
    let s = Server::start(&[]);
    let mut c = s.client();
    rpush(&mut c, "l", &["a", "b"]);
    q::<()>(&mut c, &["SET", "s", "x"]);
    let mut r2 = Raw::new(&s);
    let mut r3 = Raw::resp3(&s);
    // (command, RESP2, RESP3), as redis-server 7.0 answers.
    let cases: &[(&[&str], &str, &str)] = &[
        (&["LPOP", "missing"], "$-1\r\n", "_\r\n"),
        (&["RPOP", "missing"], "$-1\r\n", "_\r\n"),
        (&["LPOP", "missing", "0"], "*-1\r\n", "_\r\n"),
        (&["LPOP", "missing", "3"], "*-1\r\n", "_\r\n"),
        (&["RPOP", "missing", "3"], "*-1\r\n", "_\r\n"),
        (&["LPOP", "l", "0"], "*0\r\n", "*0\r\n"),
        (&["RPOP", "l", "1"], "*1\r\n$1\r\nb\r\n", "*1\r\n$1\r\nb\r\n"),
        (&["LPOP", "s", "0"], "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", ""),
    ];
    for (args, resp2, _) in cases {
        assert_eq!(r2.cmd(args), *resp2, "{args:?} in RESP2");
    }
    rpush(&mut c, "l", &["b"]);
    for (args, resp2, resp3) in cases {
        let want = if resp3.is_empty() { resp2 } else { resp3 };
        assert_eq!(r3.cmd(args), *want, "{args:?} in RESP3");
    }
}

#[test]
fn pop_errors() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a"]);
    q::<()>(&mut c, &["SET", "s", "x"]);
    let positive = "ERR value is out of range, must be positive";
    assert_eq!(err(&mut c, &["LPOP", "l", "-1"]), positive);
    assert_eq!(err(&mut c, &["RPOP", "l", "abc"]), positive);
    // The count is checked before the key.
    assert_eq!(err(&mut c, &["LPOP", "missing", "x"]), positive);
    assert_eq!(err(&mut c, &["LPOP", "s", "x"]), positive);
    assert_eq!(err(&mut c, &["LPOP", "s"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["RPOP", "s", "0"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["LPOP", "l", "1", "2"]), "ERR wrong number of arguments for 'lpop' command");
    assert_eq!(err(&mut c, &["RPOP", "l", "1", "2"]), "ERR wrong number of arguments for 'rpop' command");
    assert_eq!(lrange(&mut c, "l"), ["a"]);
}

// ---------------------------------------------------------------- reads and in-place changes

#[test]
fn lrange_index_rules() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "c", "d", "e"]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("0", "-1", &["a", "b", "c", "d", "e"]),
        ("1", "2", &["b", "c"]),
        ("-2", "-1", &["d", "e"]),
        ("-100", "100", &["a", "b", "c", "d", "e"]),
        ("3", "1", &[]),
        ("5", "10", &[]),
        ("-1", "-2", &[]),
        ("0", "-6", &[]),
        ("4", "4", &["e"]),
    ];
    for (start, stop, want) in cases {
        assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "l", start, stop]), *want, "LRANGE {start} {stop}");
    }
    assert!(q::<Vec<String>>(&mut c, &["LRANGE", "missing", "0", "-1"]).is_empty());
    assert_eq!(err(&mut c, &["LRANGE", "l", "a", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LRANGE", "missing", "0", "1.5"]), NOT_INTEGER);
}

#[test]
fn lindex_and_lset() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "c"]);
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "0"]).as_deref(), Some("a"));
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-1"]).as_deref(), Some("c"));
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-3"]).as_deref(), Some("a"));
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "3"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-4"]), None);
    // LINDEX looks the key up before it reads the index.
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "missing", "x"]), None);
    assert_eq!(err(&mut c, &["LINDEX", "l", "x"]), NOT_INTEGER);

    assert_eq!(q::<String>(&mut c, &["LSET", "l", "1", "B"]), "OK");
    assert_eq!(q::<String>(&mut c, &["LSET", "l", "-1", "C"]), "OK");
    assert_eq!(lrange(&mut c, "l"), ["a", "B", "C"]);
    assert_eq!(err(&mut c, &["LSET", "l", "3", "x"]), "ERR index out of range");
    assert_eq!(err(&mut c, &["LSET", "l", "-4", "x"]), "ERR index out of range");
    assert_eq!(err(&mut c, &["LSET", "l", "x", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LSET", "missing", "0", "x"]), "ERR no such key");
    assert_eq!(err(&mut c, &["LSET", "missing", "x", "x"]), "ERR no such key");
    assert_eq!(lrange(&mut c, "l"), ["a", "B", "C"]);
}

#[test]
fn linsert_before_and_after_the_first_pivot() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "BEFORE", "a", "x"]), 4);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "after", "a", "y"]), 5);
    assert_eq!(lrange(&mut c, "l"), ["x", "a", "y", "b", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "After", "missing", "z"]), -1);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "nokey", "BEFORE", "a", "z"]), 0);
    assert!(!exists(&mut c, "nokey"));
    assert_eq!(err(&mut c, &["LINSERT", "l", "middle", "a", "z"]), SYNTAX);
    // The position word is checked before the key's type.
    q::<()>(&mut c, &["SET", "s", "x"]);
    assert_eq!(err(&mut c, &["LINSERT", "s", "middle", "a", "z"]), SYNTAX);
    assert_eq!(err(&mut c, &["LINSERT", "s", "before", "a", "z"]), WRONGTYPE);
    assert_eq!(lrange(&mut c, "l"), ["x", "a", "y", "b", "a"]);
}

#[test]
fn lrem_from_head_tail_and_all() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "a", "c", "a", "d", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "2", "a"]), 2);
    assert_eq!(lrange(&mut c, "l"), ["b", "c", "a", "d", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "-1", "a"]), 1);
    assert_eq!(lrange(&mut c, "l"), ["b", "c", "a", "d"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "0", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "0", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "-100", "b"]), 1);
    assert_eq!(lrange(&mut c, "l"), ["c", "d"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "missing", "0", "a"]), 0);
    assert_eq!(err(&mut c, &["LREM", "l", "x", "a"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LREM", "missing", "x", "a"]), NOT_INTEGER);
    // Removing the last elements removes the key.
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "0", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "l", "0", "d"]), 1);
    assert!(!exists(&mut c, "l"));
}

#[test]
fn ltrim_ranges() {
    let (_s, mut c) = start();
    let cases: &[(&str, &str, &[&str])] = &[
        ("1", "-2", &["b", "c", "d"]),
        ("0", "-1", &["a", "b", "c", "d", "e"]),
        ("-2", "100", &["d", "e"]),
        ("-100", "0", &["a"]),
        ("2", "2", &["c"]),
    ];
    for (start, stop, want) in cases {
        q::<()>(&mut c, &["DEL", "l"]);
        rpush(&mut c, "l", &["a", "b", "c", "d", "e"]);
        assert_eq!(q::<String>(&mut c, &["LTRIM", "l", start, stop]), "OK");
        assert_eq!(lrange(&mut c, "l"), *want, "LTRIM {start} {stop}");
    }
    // An empty range removes the key.
    for (start, stop) in [("3", "1"), ("5", "10"), ("0", "-6")] {
        rpush(&mut c, "l", &["a", "b", "c", "d", "e"]);
        assert_eq!(q::<String>(&mut c, &["LTRIM", "l", start, stop]), "OK");
        assert!(!exists(&mut c, "l"), "LTRIM {start} {stop}");
    }
    assert_eq!(q::<String>(&mut c, &["LTRIM", "missing", "0", "1"]), "OK");
    assert_eq!(err(&mut c, &["LTRIM", "missing", "a", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LTRIM", "missing", "0", "b"]), NOT_INTEGER);
}

#[test]
fn lpos_rank_count_maxlen() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "c", "a", "b", "c", "a"]);
    let one = |c: &mut Connection, extra: &[&str]| -> Option<i64> {
        let mut args = vec!["LPOS", "l"];
        args.extend_from_slice(extra);
        q(c, &args)
    };
    let many = |c: &mut Connection, extra: &[&str]| -> Vec<i64> {
        let mut args = vec!["LPOS", "l"];
        args.extend_from_slice(extra);
        q(c, &args)
    };
    assert_eq!(one(&mut c, &["a"]), Some(0));
    assert_eq!(one(&mut c, &["c"]), Some(2));
    assert_eq!(one(&mut c, &["a", "RANK", "2"]), Some(3));
    assert_eq!(one(&mut c, &["a", "RANK", "-1"]), Some(6));
    assert_eq!(one(&mut c, &["a", "RANK", "-3"]), Some(0));
    assert_eq!(one(&mut c, &["a", "RANK", "4"]), None);
    assert_eq!(one(&mut c, &["z"]), None);
    assert_eq!(many(&mut c, &["a", "COUNT", "2"]), [0, 3]);
    assert_eq!(many(&mut c, &["a", "COUNT", "0"]), [0, 3, 6]);
    assert_eq!(many(&mut c, &["a", "RANK", "-2", "COUNT", "0"]), [3, 0]);
    assert_eq!(many(&mut c, &["a", "RANK", "2", "COUNT", "2", "MAXLEN", "7"]), [3, 6]);
    assert_eq!(many(&mut c, &["a", "COUNT", "0", "MAXLEN", "4"]), [0, 3]);
    assert_eq!(many(&mut c, &["a", "MAXLEN", "0", "COUNT", "0", "RANK", "-1"]), [6, 3, 0]);
    assert_eq!(one(&mut c, &["b", "RANK", "-1", "MAXLEN", "2"]), None);
    assert_eq!(one(&mut c, &["b", "RANK", "-1", "MAXLEN", "3"]), Some(4));
    assert_eq!(one(&mut c, &["a", "MAXLEN", "1", "RANK", "-1"]), Some(6));
    assert!(many(&mut c, &["z", "COUNT", "1"]).is_empty());
    assert!(many(&mut c, &["a", "RANK", "5", "COUNT", "1"]).is_empty());
    // The last COUNT given wins.
    assert_eq!(many(&mut c, &["a", "count", "1", "count", "2"]), [0, 3]);
    assert_eq!(one(&mut c, &["a", "RANK", "9223372036854775807"]), None);
    assert_eq!(one(&mut c, &["a", "MAXLEN", "9223372036854775807"]), Some(0));
    // Redis's C longs: RANK -9223372036854775808 stays negative when negated,
    // so it searches from the tail and every match counts, with no COUNT limit.
    assert_eq!(one(&mut c, &["a", "RANK", "-9223372036854775808"]), Some(6));
    assert_eq!(many(&mut c, &["a", "RANK", "-9223372036854775808", "COUNT", "1"]), [6, 3, 0]);
    assert_eq!(one(&mut c, &["a", "RANK", "-9223372036854775808", "MAXLEN", "3"]), Some(6));
    // A missing key: nil, or an empty array with COUNT.
    assert_eq!(q::<Option<i64>>(&mut c, &["LPOS", "missing", "a"]), None);
    assert!(q::<Vec<i64>>(&mut c, &["LPOS", "missing", "a", "COUNT", "0"]).is_empty());
}

#[test]
fn lpos_errors() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a"]);
    q::<()>(&mut c, &["SET", "s", "x"]);
    let rank0 = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK", "0"]), rank0);
    // Options are checked before the key.
    assert_eq!(err(&mut c, &["LPOS", "missing", "a", "RANK", "0"]), rank0);
    assert_eq!(err(&mut c, &["LPOS", "s", "a", "RANK", "0"]), rank0);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK", "01"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK", "9223372036854775808"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT", "-1"]), "ERR COUNT can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT", "x"]), "ERR COUNT can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT", "9223372036854775808"]), "ERR COUNT can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "MAXLEN", "-1"]), "ERR MAXLEN can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "MAXLEN", "x"]), "ERR MAXLEN can't be negative");
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "FOO", "1"]), SYNTAX);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK"]), SYNTAX);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT", "1", "MAXLEN"]), SYNTAX);
    assert_eq!(err(&mut c, &["LPOS", "s", "a"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["LPOS", "l"]), "ERR wrong number of arguments for 'lpos' command");
}

#[test]
fn lpos_reply_shapes() {
    let s = Server::start(&[]);
    rpush(&mut s.client(), "l", &["a", "b", "a"]);
    let cases: &[(&[&str], &str, &str)] = &[
        (&["LPOS", "l", "a"], ":0\r\n", ":0\r\n"),
        (&["LPOS", "l", "z"], "$-1\r\n", "_\r\n"),
        (&["LPOS", "missing", "z"], "$-1\r\n", "_\r\n"),
        (&["LPOS", "l", "z", "COUNT", "1"], "*0\r\n", "*0\r\n"),
        (&["LPOS", "missing", "z", "COUNT", "0"], "*0\r\n", "*0\r\n"),
        (&["LPOS", "l", "a", "COUNT", "0"], "*2\r\n:0\r\n:2\r\n", "*2\r\n:0\r\n:2\r\n"),
        (&["LINDEX", "l", "5"], "$-1\r\n", "_\r\n"),
        (&["LINDEX", "missing", "0"], "$-1\r\n", "_\r\n"),
        (&["LRANGE", "missing", "0", "-1"], "*0\r\n", "*0\r\n"),
    ];
    let (mut r2, mut r3) = (Raw::new(&s), Raw::resp3(&s));
    for (args, resp2, resp3) in cases {
        assert_eq!(r2.cmd(args), *resp2, "{args:?} in RESP2");
        assert_eq!(r3.cmd(args), *resp3, "{args:?} in RESP3");
    }
}

// ---------------------------------------------------------------- LMOVE, RPOPLPUSH

#[test]
fn lmove_every_direction() {
    let (_s, mut c) = start();
    rpush(&mut c, "{t}src", &["a", "b", "c", "d"]);
    rpush(&mut c, "{t}dst", &["x"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "{t}src", "{t}dst", "LEFT", "LEFT"]), "a");
    assert_eq!(q::<String>(&mut c, &["LMOVE", "{t}src", "{t}dst", "right", "left"]), "d");
    assert_eq!(q::<String>(&mut c, &["LMOVE", "{t}src", "{t}dst", "Left", "Right"]), "b");
    assert_eq!(lrange(&mut c, "{t}dst"), ["d", "a", "x", "b"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "{t}src", "{t}dst", "RIGHT", "RIGHT"]), "c");
    assert_eq!(lrange(&mut c, "{t}dst"), ["d", "a", "x", "b", "c"]);
    // The source emptied: its key is gone.
    assert!(!exists(&mut c, "{t}src"));
    // A missing source: nil, nothing created.
    assert_eq!(q::<Option<String>>(&mut c, &["LMOVE", "{t}src", "{t}new", "LEFT", "LEFT"]), None);
    assert!(!exists(&mut c, "{t}new"));
    // A missing destination is created.
    assert_eq!(q::<String>(&mut c, &["LMOVE", "{t}dst", "{t}new", "LEFT", "LEFT"]), "d");
    assert_eq!(lrange(&mut c, "{t}new"), ["d"]);
}

#[test]
fn lmove_same_list_rotates() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b", "c"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "l", "LEFT", "RIGHT"]), "a");
    assert_eq!(lrange(&mut c, "l"), ["b", "c", "a"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "l", "RIGHT", "LEFT"]), "a");
    assert_eq!(lrange(&mut c, "l"), ["a", "b", "c"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "l", "LEFT", "LEFT"]), "a");
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "l", "RIGHT", "RIGHT"]), "c");
    assert_eq!(lrange(&mut c, "l"), ["a", "b", "c"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "l", "l"]), "c");
    assert_eq!(lrange(&mut c, "l"), ["c", "a", "b"]);
    // A one-element list rotates onto itself and keeps its key and TTL.
    rpush(&mut c, "one", &["x"]);
    q::<()>(&mut c, &["EXPIRE", "one", "1000"]);
    for dirs in [["LEFT", "RIGHT"], ["RIGHT", "LEFT"], ["LEFT", "LEFT"], ["RIGHT", "RIGHT"]] {
        assert_eq!(q::<String>(&mut c, &["LMOVE", "one", "one", dirs[0], dirs[1]]), "x");
        assert_eq!(lrange(&mut c, "one"), ["x"]);
    }
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "one", "one"]), "x");
    let ttl: i64 = q(&mut c, &["TTL", "one"]);
    assert!(ttl > 990, "TTL after rotating: {ttl}");
}

#[test]
fn lmove_checks_before_it_changes() {
    let (_s, mut c) = start();
    rpush(&mut c, "{t}l", &["a", "b"]);
    q::<()>(&mut c, &["SET", "{t}s", "x"]);
    assert_eq!(err(&mut c, &["LMOVE", "{t}l", "{t}d", "UP", "LEFT"]), SYNTAX);
    assert_eq!(err(&mut c, &["LMOVE", "{t}l", "{t}d", "LEFT", "DOWN"]), SYNTAX);
    assert_eq!(err(&mut c, &["LMOVE", "{t}l", "{t}s", "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["LMOVE", "{t}s", "{t}l", "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["RPOPLPUSH", "{t}l", "{t}s"]), WRONGTYPE);
    assert_eq!(lrange(&mut c, "{t}l"), ["a", "b"]);
    assert_eq!(q::<String>(&mut c, &["GET", "{t}s"]), "x");
    // A missing source answers nil before the destination's type is looked at.
    assert_eq!(q::<Option<String>>(&mut c, &["LMOVE", "{t}none", "{t}s", "LEFT", "LEFT"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["RPOPLPUSH", "{t}none", "{t}s"]), None);
}

#[test]
fn rpoplpush_moves_tail_to_head() {
    let (_s, mut c) = start();
    rpush(&mut c, "{q}a", &["1", "2", "3"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "{q}a", "{q}b"]), "3");
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "{q}a", "{q}b"]), "2");
    assert_eq!(lrange(&mut c, "{q}a"), ["1"]);
    assert_eq!(lrange(&mut c, "{q}b"), ["2", "3"]);
    assert_eq!(q::<Option<String>>(&mut c, &["RPOPLPUSH", "{q}none", "{q}b"]), None);
}

// ---------------------------------------------------------------- LMPOP

#[test]
fn lmpop_first_non_empty_list() {
    let (_s, mut c) = start();
    rpush(&mut c, "{m}b", &["a", "b", "c"]);
    let v: Value = q(&mut c, &["LMPOP", "2", "{m}a", "{m}b", "RIGHT", "COUNT", "2"]);
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"{m}b".to_vec()),
            Value::Array(vec![Value::BulkString(b"c".to_vec()), Value::BulkString(b"b".to_vec())])
        ])
    );
    let v: (String, Vec<String>) = q(&mut c, &["LMPOP", "1", "{m}b", "left", "count", "10"]);
    assert_eq!(v, ("{m}b".to_string(), vec!["a".to_string()]));
    assert!(!exists(&mut c, "{m}b"));
    rpush(&mut c, "{m}a", &["x", "y"]);
    let v: (String, Vec<String>) = q(&mut c, &["LMPOP", "2", "{m}a", "{m}b", "LEFT"]);
    assert_eq!(v, ("{m}a".to_string(), vec!["x".to_string()]));
    assert_eq!(q::<Option<Value>>(&mut c, &["LMPOP", "2", "{m}none", "{m}b", "LEFT"]), None);
    let v: (String, Vec<String>) = q(&mut c, &["LMPOP", "1", "{m}a", "LEFT", "COUNT", "9223372036854775807"]);
    assert_eq!(v, ("{m}a".to_string(), vec!["y".to_string()]));
}

#[test]
fn lmpop_errors_and_reply_shapes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    rpush(&mut c, "{m}l", &["a"]);
    q::<()>(&mut c, &["SET", "{m}s", "x"]);
    let numkeys = "ERR numkeys should be greater than 0";
    let count = "ERR count should be greater than 0";
    let cases: &[(&[&str], &str)] = &[
        (&["LMPOP", "0", "{m}l", "LEFT"], numkeys),
        (&["LMPOP", "x", "{m}l", "LEFT"], numkeys),
        (&["LMPOP", "-1", "{m}l", "LEFT"], numkeys),
        // numkeys reaches past the keys: nothing is left for LEFT|RIGHT.
        (&["LMPOP", "2", "{m}l", "{m}x"], SYNTAX),
        (&["LMPOP", "9223372036854775807", "{m}l", "LEFT"], SYNTAX),
        (&["LMPOP", "1", "{m}l", "UP"], SYNTAX),
        (&["LMPOP", "1", "{m}l", "LEFT", "COUNT", "0"], count),
        (&["LMPOP", "1", "{m}l", "LEFT", "COUNT", "x"], count),
        (&["LMPOP", "1", "{m}l", "LEFT", "COUNT", "9223372036854775808"], count),
        (&["LMPOP", "1", "{m}l", "LEFT", "COUNT", "1", "COUNT", "2"], SYNTAX),
        (&["LMPOP", "1", "{m}l", "LEFT", "FOO"], SYNTAX),
        (&["LMPOP", "1", "{m}l", "LEFT", "COUNT"], SYNTAX),
        (&["LMPOP", "2", "{m}s", "{m}l", "LEFT"], WRONGTYPE),
        (&["LMPOP", "1"], "ERR wrong number of arguments for 'lmpop' command"),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    assert_eq!(lrange(&mut c, "{m}l"), ["a"]);
    // A wrong type after the list that serves is not looked at.
    let v: (String, Vec<String>) = q(&mut c, &["LMPOP", "2", "{m}l", "{m}s", "LEFT"]);
    assert_eq!(v.1, ["a"]);
    let (mut r2, mut r3) = (Raw::new(&s), Raw::resp3(&s));
    assert_eq!(r2.cmd(&["LMPOP", "1", "{m}none", "LEFT"]), "*-1\r\n");
    assert_eq!(r3.cmd(&["LMPOP", "1", "{m}none", "LEFT"]), "_\r\n");
    rpush(&mut c, "{m}l", &["a", "b"]);
    assert_eq!(r3.cmd(&["LMPOP", "1", "{m}l", "LEFT", "COUNT", "5"]), "*2\r\n$4\r\n{m}l\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

// ---------------------------------------------------------------- blocking commands that need not wait

#[test]
fn blocking_commands_serve_at_once_when_they_can() {
    let (_s, mut c) = start();
    rpush(&mut c, "{b}l", &["a", "b", "c"]);
    // The first key that has elements serves.
    let v: (String, String) = q(&mut c, &["BLPOP", "{b}none", "{b}l", "0"]);
    assert_eq!(v, ("{b}l".to_string(), "a".to_string()));
    let v: (String, String) = q(&mut c, &["BRPOP", "{b}l", "{b}none", "1.5"]);
    assert_eq!(v, ("{b}l".to_string(), "c".to_string()));
    rpush(&mut c, "{b}l", &["c", "d"]);
    assert_eq!(q::<String>(&mut c, &["BLMOVE", "{b}l", "{b}d", "LEFT", "RIGHT", "0"]), "b");
    assert_eq!(q::<String>(&mut c, &["BRPOPLPUSH", "{b}l", "{b}d", "0"]), "d");
    assert_eq!(lrange(&mut c, "{b}d"), ["d", "b"]);
    let v: (String, Vec<String>) = q(&mut c, &["BLMPOP", "0", "2", "{b}none", "{b}d", "RIGHT", "COUNT", "5"]);
    assert_eq!(v, ("{b}d".to_string(), vec!["b".to_string(), "d".to_string()]));
    assert!(!exists(&mut c, "{b}d"));
    // BLMOVE on the same list rotates.
    assert_eq!(q::<String>(&mut c, &["BLMOVE", "{b}l", "{b}l", "LEFT", "RIGHT", "0"]), "c");
    assert_eq!(lrange(&mut c, "{b}l"), ["c"]);
}

#[test]
fn blocking_command_errors() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "{b}s", "x"]);
    rpush(&mut c, "{b}l", &["a"]);
    let not_float = "ERR timeout is not a float or out of range";
    let negative = "ERR timeout is negative";
    let cases: &[(&[&str], &str)] = &[
        (&["BLPOP", "{b}l", "x"], not_float),
        (&["BLPOP", "{b}l", "nan"], not_float),
        (&["BLPOP", "{b}l", "-1"], negative),
        (&["BRPOP", "{b}l", "-0.5"], negative),
        (&["BLPOP", "{b}s", "0"], WRONGTYPE),
        // Keys are looked at in order until one serves.
        (&["BLPOP", "{b}s", "{b}l", "0"], WRONGTYPE),
        (&["BRPOP", "{b}none", "{b}s", "{b}l", "0"], WRONGTYPE),
        (&["BLMOVE", "{b}s", "{b}d", "LEFT", "LEFT", "x"], not_float),
        (&["BLMOVE", "{b}s", "{b}d", "UP", "LEFT", "x"], SYNTAX),
        (&["BLMOVE", "{b}s", "{b}d", "LEFT", "LEFT", "0"], WRONGTYPE),
        (&["BLMOVE", "{b}l", "{b}s", "LEFT", "LEFT", "0"], WRONGTYPE),
        (&["BRPOPLPUSH", "{b}s", "{b}d", "x"], not_float),
        (&["BRPOPLPUSH", "{b}s", "{b}d", "0"], WRONGTYPE),
        (&["BLMPOP", "x", "1", "{b}l", "LEFT"], not_float),
        (&["BLMPOP", "0", "0", "{b}l", "LEFT"], "ERR numkeys should be greater than 0"),
        // The keys and options are read before the timeout.
        (&["BLMPOP", "x", "0", "{b}l", "LEFT"], "ERR numkeys should be greater than 0"),
        (&["BLMPOP", "-1", "1", "{b}s", "LEFT"], negative),
        (&["BLMPOP", "0", "1", "{b}s", "LEFT"], WRONGTYPE),
        (&["BLMPOP", "0", "1", "{b}s", "LEFT", "COUNT", "0"], "ERR count should be greater than 0"),
        (&["BLMPOP", "0", "2", "{b}l", "{b}x"], SYNTAX),
        (&["BLPOP", "{b}l"], "ERR wrong number of arguments for 'blpop' command"),
        (&["BLMOVE", "{b}l", "{b}d", "LEFT", "LEFT"], "ERR wrong number of arguments for 'blmove' command"),
        (&["BLMPOP", "0", "1", "{b}l"], "ERR wrong number of arguments for 'blmpop' command"),
    ];
    for (args, want) in cases {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    assert_eq!(lrange(&mut c, "{b}l"), ["a"]);
}

// ---------------------------------------------------------------- types, arity, shards

#[test]
fn list_commands_on_a_string_are_wrongtype() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "{w}s", "x"]);
    let calls: &[&[&str]] = &[
        &["LPUSH", "{w}s", "a"],
        &["RPUSH", "{w}s", "a"],
        &["LPUSHX", "{w}s", "a"],
        &["RPUSHX", "{w}s", "a"],
        &["LPOP", "{w}s"],
        &["RPOP", "{w}s", "2"],
        &["LLEN", "{w}s"],
        &["LINDEX", "{w}s", "0"],
        &["LRANGE", "{w}s", "0", "-1"],
        &["LSET", "{w}s", "0", "a"],
        &["LINSERT", "{w}s", "BEFORE", "a", "b"],
        &["LREM", "{w}s", "0", "a"],
        &["LTRIM", "{w}s", "0", "1"],
        &["LPOS", "{w}s", "a"],
        &["LMOVE", "{w}s", "{w}d", "LEFT", "LEFT"],
        &["RPOPLPUSH", "{w}s", "{w}d"],
        &["LMPOP", "1", "{w}s", "LEFT"],
        &["BLPOP", "{w}s", "0"],
        &["BRPOP", "{w}s", "0"],
        &["BLMOVE", "{w}s", "{w}d", "LEFT", "LEFT", "0"],
        &["BRPOPLPUSH", "{w}s", "{w}d", "0"],
        &["BLMPOP", "0", "1", "{w}s", "LEFT"],
    ];
    for args in calls {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(q::<String>(&mut c, &["GET", "{w}s"]), "x");
    assert!(!exists(&mut c, "{w}d"));
    // And string commands on a list.
    rpush(&mut c, "{w}l", &["a"]);
    for args in [&["GET", "{w}l"][..], &["APPEND", "{w}l", "x"], &["INCR", "{w}l"], &["STRLEN", "{w}l"]] {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
    // SET replaces a list like any value.
    q::<()>(&mut c, &["SET", "{w}l", "v"]);
    assert_eq!(q::<String>(&mut c, &["TYPE", "{w}l"]), "string");
}

#[test]
fn arity_errors() {
    let (_s, mut c) = start();
    let calls: &[&[&str]] = &[
        &["LPUSH", "k"],
        &["RPUSH", "k"],
        &["LPUSHX", "k"],
        &["RPUSHX", "k"],
        &["LPOP"],
        &["RPOP"],
        &["LLEN"],
        &["LLEN", "k", "x"],
        &["LINDEX", "k"],
        &["LRANGE", "k", "0"],
        &["LSET", "k", "0"],
        &["LINSERT", "k", "BEFORE", "a"],
        &["LREM", "k", "0"],
        &["LTRIM", "k", "0"],
        &["LPOS", "k"],
        &["LMOVE", "a", "b", "LEFT"],
        &["RPOPLPUSH", "a"],
        &["LMPOP", "1", "k"],
        &["BLPOP", "k"],
        &["BRPOP", "k"],
        &["BLMOVE", "a", "b", "LEFT", "LEFT"],
        &["BRPOPLPUSH", "a", "b"],
        &["BLMPOP", "0", "1", "k"],
    ];
    for args in calls {
        let want = format!("ERR wrong number of arguments for '{}' command", args[0].to_lowercase());
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
}

// (LMOVE, RPOPLPUSH, BLMOVE and BRPOPLPUSH run across shards: `moves.rs`;
// LMPOP, BLPOP, BRPOP and BLMPOP: `pops.rs`.)

#[test]
fn lists_in_other_databases_are_separate() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["db0"]);
    q::<()>(&mut c, &["SELECT", "3"]);
    assert!(lrange(&mut c, "l").is_empty());
    rpush(&mut c, "l", &["db3"]);
    assert_eq!(q::<String>(&mut c, &["LMOVE", "l", "l", "LEFT", "RIGHT"]), "db3");
    q::<()>(&mut c, &["SELECT", "0"]);
    assert_eq!(lrange(&mut c, "l"), ["db0"]);
}

#[test]
fn an_expired_list_is_gone() {
    let (_s, mut c) = start();
    rpush(&mut c, "l", &["a", "b"]);
    q::<()>(&mut c, &["PEXPIRE", "l", "50"]);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["LPOP", "l"]), None);
    // A push after expiry starts a new list without the old TTL.
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "l", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "l"]), -1);
}

// ---------------------------------------------------------------- WATCH, MULTI, events, COMMAND

#[test]
fn list_writes_abort_a_watch_and_reads_do_not() {
    let (s, mut c) = start();
    let mut other = s.client();
    rpush(&mut c, "{x}l", &["a", "b"]);
    // A read from another client leaves the WATCH alone.
    let exec = |c: &mut Connection| -> Option<Vec<i64>> {
        q::<()>(c, &["MULTI"]);
        q::<()>(c, &["LLEN", "{x}l"]);
        q(c, &["EXEC"])
    };
    q::<()>(&mut c, &["WATCH", "{x}l"]);
    q::<()>(&mut other, &["LPOS", "{x}l", "a"]);
    q::<()>(&mut other, &["LRANGE", "{x}l", "0", "-1"]);
    assert_eq!(exec(&mut c), Some(vec![2]));
    // Every kind of write aborts it, a trim that removes nothing too (as Redis signals it).
    let writes: &[&[&str]] = &[
        &["LTRIM", "{x}l", "0", "-1"],
        &["LSET", "{x}l", "0", "a"],
        &["LMOVE", "{x}l", "{x}l", "LEFT", "RIGHT"],
        &["RPUSHX", "{x}l", "c"],
        &["RPOP", "{x}l"],
        &["LINSERT", "{x}l", "BEFORE", "a", "z"],
        &["LREM", "{x}l", "1", "z"],
    ];
    for w in writes {
        q::<()>(&mut c, &["WATCH", "{x}l"]);
        q::<Value>(&mut other, w);
        assert_eq!(exec(&mut c), None, "{w:?} did not abort the WATCH");
    }
    // Changes that change nothing do not.
    for w in [&["LREM", "{x}l", "0", "absent"][..], &["LINSERT", "{x}l", "AFTER", "absent", "x"], &["LPOP", "{x}l", "0"]] {
        q::<()>(&mut c, &["WATCH", "{x}l"]);
        q::<Value>(&mut other, w);
        assert!(exec(&mut c).is_some(), "{w:?} aborted the WATCH");
    }
}

#[test]
fn list_commands_in_a_transaction_are_applied_together() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    rpush(&mut c, "{tx}a", &["1", "2", "3"]);
    q::<()>(&mut c, &["MULTI"]);
    for args in [
        &["LMOVE", "{tx}a", "{tx}b", "LEFT", "LEFT"][..],
        &["RPOPLPUSH", "{tx}a", "{tx}b"],
        &["LPUSH", "{tx}a", "0"],
        &["LMPOP", "2", "{tx}none", "{tx}b", "RIGHT"],
        &["BLPOP", "{tx}empty", "{tx}a", "0"],
    ] {
        assert_eq!(q::<String>(&mut c, args), "QUEUED");
    }
    let v: Value = q(&mut c, &["EXEC"]);
    let want = Value::Array(vec![
        Value::BulkString(b"1".to_vec()),
        Value::BulkString(b"3".to_vec()),
        Value::Int(2),
        Value::Array(vec![Value::BulkString(b"{tx}b".to_vec()), Value::Array(vec![Value::BulkString(b"1".to_vec())])]),
        Value::Array(vec![Value::BulkString(b"{tx}a".to_vec()), Value::BulkString(b"0".to_vec())]),
    ]);
    assert_eq!(v, want);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(all_lists(&mut c), [("{tx}a".to_string(), vec!["2".to_string()]), ("{tx}b".to_string(), vec!["3".to_string()])]);
}

/// Reads `n` keyevent notifications from a PSUBSCRIBEd raw connection as `event key`.
fn events(r: &mut Raw, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let msg = r.reply();
            let parts: Vec<&str> = msg.split("\r\n").collect();
            // *4 $8 pmessage $len pattern $len channel $len key
            format!("{} {}", parts[6].trim_start_matches("__keyevent@0__:"), parts[8])
        })
        .collect()
}

#[test]
fn keyspace_events_in_redis_order() {
    let s = Server::start(&["--notify-keyspace-events", "KEA"]);
    let mut sub = Raw::new(&s);
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    let mut c = s.client();
    rpush(&mut c, "{n}s", &["a", "b"]);
    q::<()>(&mut c, &["LMOVE", "{n}s", "{n}d", "LEFT", "RIGHT"]);
    q::<()>(&mut c, &["LMOVE", "{n}s", "{n}d", "LEFT", "RIGHT"]);
    q::<()>(&mut c, &["LTRIM", "{n}d", "0", "-1"]);
    q::<()>(&mut c, &["LMOVE", "{n}d", "{n}d", "LEFT", "RIGHT"]);
    q::<()>(&mut c, &["BLPOP", "{n}d", "0"]);
    q::<()>(&mut c, &["LPOP", "{n}d", "0"]);
    q::<()>(&mut c, &["LSET", "{n}d", "0", "x"]);
    q::<()>(&mut c, &["LINSERT", "{n}d", "AFTER", "x", "y"]);
    q::<()>(&mut c, &["LREM", "{n}d", "0", "x"]);
    q::<()>(&mut c, &["LMPOP", "1", "{n}d", "RIGHT"]);
    // As redis-server 7.0 sends them.
    let want = [
        "rpush {n}s",
        "rpush {n}d",
        "lpop {n}s",
        "rpush {n}d",
        "lpop {n}s",
        "del {n}s",
        "ltrim {n}d",
        "rpush {n}d",
        "lpop {n}d",
        "lpop {n}d",
        "lset {n}d",
        "linsert {n}d",
        "lrem {n}d",
        "rpop {n}d",
        "del {n}d",
    ];
    assert_eq!(events(&mut sub, want.len()), want);
}

#[test]
fn command_info_and_getkeys() {
    let (_s, mut c) = start();
    let keys = |c: &mut Connection, args: &[&str]| -> Vec<String> {
        let mut a = vec!["COMMAND", "GETKEYS"];
        a.extend_from_slice(args);
        q(c, &a)
    };
    assert_eq!(keys(&mut c, &["LMPOP", "2", "a", "b", "LEFT"]), ["a", "b"]);
    assert_eq!(keys(&mut c, &["BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "2"]), ["a", "b"]);
    assert_eq!(keys(&mut c, &["BLPOP", "a", "b", "0"]), ["a", "b"]);
    assert_eq!(keys(&mut c, &["LMOVE", "a", "b", "LEFT", "LEFT"]), ["a", "b"]);
    assert_eq!(keys(&mut c, &["BRPOPLPUSH", "a", "b", "0"]), ["a", "b"]);
    // Name, arity, flags, first key, last key, step, as COMMAND INFO in Redis 7.0.
    let info = |c: &mut Connection, name: &str| -> (String, i64, Vec<String>, i64, i64, i64) {
        let v: Vec<Value> = q(c, &["COMMAND", "INFO", name]);
        let Value::Array(e) = &v[0] else { panic!("COMMAND INFO {name}: {v:?}") };
        let s = |v: &Value| redis::from_redis_value::<String>(v).unwrap();
        let i = |v: &Value| redis::from_redis_value::<i64>(v).unwrap();
        let Value::Array(flags) = &e[2] else { panic!() };
        (s(&e[0]), i(&e[1]), flags.iter().map(s).collect(), i(&e[3]), i(&e[4]), i(&e[5]))
    };
    let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(info(&mut c, "lpush"), ("lpush".into(), -3, f(&["write", "denyoom", "fast"]), 1, 1, 1));
    assert_eq!(info(&mut c, "lrange"), ("lrange".into(), 4, f(&["readonly"]), 1, 1, 1));
    assert_eq!(info(&mut c, "lmove"), ("lmove".into(), 5, f(&["write", "denyoom"]), 1, 2, 1));
    assert_eq!(info(&mut c, "lmpop"), ("lmpop".into(), -4, f(&["write", "movablekeys"]), 0, 0, 0));
    assert_eq!(info(&mut c, "blpop"), ("blpop".into(), -3, f(&["write", "noscript", "blocking"]), 1, -2, 1));
    assert_eq!(info(&mut c, "blmove"), ("blmove".into(), 6, f(&["write", "denyoom", "noscript", "blocking"]), 1, 2, 1));
    assert_eq!(info(&mut c, "blmpop"), ("blmpop".into(), -5, f(&["write", "blocking", "movablekeys"]), 0, 0, 0));
}

// ---------------------------------------------------------------- durability

/// Every list key and its elements, sorted by key.
fn all_lists(c: &mut Connection) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<String> = q(c, &["KEYS", "*"]);
    keys.sort();
    keys.retain(|k| q::<String>(c, &["TYPE", k]) == "list");
    keys.into_iter().map(|k| (k.clone(), lrange(c, &k))).collect()
}

#[test]
fn lists_survive_a_clean_restart() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    rpush(&mut c, "{r}a", &["1", "2", "3", "4", "5", "6"]);
    q::<()>(&mut c, &["LPUSH", "{r}a", "0"]);
    q::<()>(&mut c, &["LPOP", "{r}a", "2"]);
    q::<()>(&mut c, &["RPOP", "{r}a"]);
    q::<()>(&mut c, &["LSET", "{r}a", "0", "two"]);
    q::<()>(&mut c, &["LINSERT", "{r}a", "AFTER", "two", "2.5"]);
    q::<()>(&mut c, &["LMOVE", "{r}a", "{r}b", "RIGHT", "LEFT"]);
    q::<()>(&mut c, &["RPUSH", "{r}c", "x", "y", "x", "z"]);
    q::<()>(&mut c, &["LREM", "{r}c", "0", "x"]);
    q::<()>(&mut c, &["LTRIM", "{r}c", "0", "0"]);
    q::<()>(&mut c, &["RPUSH", "ttl", "t"]);
    q::<()>(&mut c, &["EXPIRE", "ttl", "1000"]);
    q::<()>(&mut c, &["RPUSH", "gone", "g"]);
    q::<()>(&mut c, &["LMOVE", "gone", "gone", "LEFT", "LEFT"]);
    q::<()>(&mut c, &["RPOP", "gone"]);
    let before = all_lists(&mut c);
    assert_eq!(
        before,
        [
            ("ttl".to_string(), vec!["t".to_string()]),
            ("{r}a".to_string(), vec!["two".to_string(), "2.5".to_string(), "3".to_string(), "4".to_string()]),
            ("{r}b".to_string(), vec!["5".to_string()]),
            ("{r}c".to_string(), vec!["y".to_string()]),
        ]
    );
    assert!(s.stop());
    s.restart();
    let mut c = s.client();
    assert_eq!(all_lists(&mut c), before);
    let ttl: i64 = q(&mut c, &["TTL", "ttl"]);
    assert!(ttl > 990, "TTL after restart: {ttl}");
}

#[test]
fn sigkill_after_each_kind_of_change_keeps_exactly_what_was_acknowledged() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    // Each step changes the lists; after each one the server is killed and
    // must come back with exactly the state the step acknowledged.
    type Step = (&'static [&'static str], &'static [(&'static str, &'static [&'static str])]);
    let steps: &[Step] = &[
        (&["RPUSH", "{k}a", "a", "b", "c", "d", "e"], &[("{k}a", &["a", "b", "c", "d", "e"])]),
        (&["LMOVE", "{k}a", "{k}b", "LEFT", "RIGHT"], &[("{k}a", &["b", "c", "d", "e"]), ("{k}b", &["a"])]),
        (&["LMOVE", "{k}a", "{k}a", "LEFT", "RIGHT"], &[("{k}a", &["c", "d", "e", "b"]), ("{k}b", &["a"])]),
        (&["RPOPLPUSH", "{k}a", "{k}b"], &[("{k}a", &["c", "d", "e"]), ("{k}b", &["b", "a"])]),
        (&["LSET", "{k}a", "-1", "E"], &[("{k}a", &["c", "d", "E"]), ("{k}b", &["b", "a"])]),
        (&["LINSERT", "{k}a", "BEFORE", "d", "c"], &[("{k}a", &["c", "c", "d", "E"]), ("{k}b", &["b", "a"])]),
        (&["LREM", "{k}a", "-1", "c"], &[("{k}a", &["c", "d", "E"]), ("{k}b", &["b", "a"])]),
        (&["LTRIM", "{k}a", "1", "-1"], &[("{k}a", &["d", "E"]), ("{k}b", &["b", "a"])]),
        (&["LPOP", "{k}a", "5"], &[("{k}b", &["b", "a"])]),
        (&["LMPOP", "2", "{k}a", "{k}b", "RIGHT"], &[("{k}b", &["b"])]),
        (&["BLMOVE", "{k}b", "{k}c", "LEFT", "LEFT", "0"], &[("{k}c", &["b"])]),
        (&["BRPOPLPUSH", "{k}c", "{k}a", "0"], &[("{k}a", &["b"])]),
        (&["BLPOP", "{k}a", "0"], &[]),
    ];
    for (args, want) in steps {
        let mut c = s.client();
        cmd(args).query::<Value>(&mut c).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        s.kill();
        s.restart();
        let mut c = s.client();
        let want: Vec<(String, Vec<String>)> =
            want.iter().map(|(k, v)| (k.to_string(), v.iter().map(|e| e.to_string()).collect())).collect();
        assert_eq!(all_lists(&mut c), want, "after {args:?} and SIGKILL");
    }
}

/// Moves elements between two lists from several connections until stopped;
/// answers how many moves each acknowledged.
fn mover(port: u16, t: usize, stop: Arc<AtomicBool>) -> usize {
    let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")).and_then(|c| c.get_connection()) else { return 0 };
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let (src, dst) = if (n + t).is_multiple_of(2) { ("{mv}a", "{mv}b") } else { ("{mv}b", "{mv}a") };
        let r = match n % 3 {
            0 => cmd(&["LMOVE", src, dst, "LEFT", "RIGHT"]).query::<Option<String>>(&mut c),
            1 => cmd(&["RPOPLPUSH", src, dst]).query::<Option<String>>(&mut c),
            _ => cmd(&["LMOVE", src, src, "RIGHT", "LEFT"]).query::<Option<String>>(&mut c),
        };
        if r.is_err() {
            break;
        }
        n += 1;
    }
    n
}

#[test]
fn sigkill_during_moves_loses_and_duplicates_nothing() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let elems: Vec<String> = (0..200).map(|i| format!("e{i}")).collect();
    let mut c = s.client();
    let mut args = vec!["RPUSH", "{mv}a"];
    args.extend(elems.iter().map(String::as_str));
    q::<()>(&mut c, &args);
    let mut rng = rand::thread_rng();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (port, stop) = (s.port, stop.clone());
                std::thread::spawn(move || mover(port, t, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        let moves: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(moves > 0, "round {round}: no move was acknowledged");
        s.restart();
        let mut c = s.client();
        let mut all: Vec<String> = lrange(&mut c, "{mv}a");
        all.extend(lrange(&mut c, "{mv}b"));
        all.sort();
        let mut want = elems.clone();
        want.sort();
        assert_eq!(all, want, "round {round}: the two lists hold a different set of elements after SIGKILL");
    }
}

// ---------------------------------------------------------------- side by side with redis-server

fn pick(rng: &mut impl Rng, v: &[&str]) -> String {
    v[rng.gen_range(0..v.len())].to_string()
}

/// A random list command over a few keys of one hash tag (and a string), with edge-case arguments.
fn random_command(rng: &mut impl Rng) -> Vec<String> {
    const KEYS: &[&str] = &["{z}a", "{z}b", "{z}c", "{z}a", "{z}b", "{z}c", "{z}s"];
    const ELEMS: &[&str] = &["x", "y", "z", "", "x"];
    const INTS: &[&str] = &["0", "1", "2", "-1", "-2", "3", "-5", "10", "x"];
    const SIDES: &[&str] = &["LEFT", "RIGHT", "left", "LEFT", "RIGHT", "up"];
    let k = pick(rng, KEYS);
    let k2 = pick(rng, KEYS);
    let either = |rng: &mut dyn rand::RngCore, a: &str, b: &str| if rng.gen() { a.to_string() } else { b.to_string() };
    let mut w: Vec<String> = match rng.gen_range(0..20) {
        0 | 1 => vec![either(rng, "LPUSH", "RPUSH"), k],
        2 => vec![either(rng, "LPUSHX", "RPUSHX"), k],
        3 => vec![either(rng, "LPOP", "RPOP"), k],
        4 => vec![either(rng, "LPOP", "RPOP"), k, pick(rng, INTS)],
        5 => vec!["LLEN".into(), k],
        6 => vec!["LINDEX".into(), k, pick(rng, INTS)],
        7 => vec!["LRANGE".into(), k, pick(rng, INTS), pick(rng, INTS)],
        8 => vec!["LSET".into(), k, pick(rng, INTS), pick(rng, ELEMS)],
        9 => vec!["LINSERT".into(), k, pick(rng, &["BEFORE", "AFTER", "after", "x"]), pick(rng, ELEMS), pick(rng, ELEMS)],
        10 => vec!["LREM".into(), k, pick(rng, INTS), pick(rng, ELEMS)],
        11 => vec!["LTRIM".into(), k, pick(rng, INTS), pick(rng, INTS)],
        12 => vec!["LPOS".into(), k, pick(rng, ELEMS)],
        13 | 14 => vec!["LMOVE".into(), k, k2, pick(rng, SIDES), pick(rng, SIDES)],
        15 => vec!["RPOPLPUSH".into(), k, k2],
        16 => vec!["LMPOP".into(), "2".into(), k, k2, pick(rng, SIDES)],
        17 => vec!["BLMOVE".into(), k, k2, pick(rng, SIDES), pick(rng, SIDES), "0.01".into()],
        18 => vec![either(rng, "BLPOP", "BRPOP"), k, k2, "0.01".into()],
        _ => vec!["BLMPOP".into(), "0.01".into(), "1".into(), k, pick(rng, SIDES)],
    };
    match w[0].as_str() {
        "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX" => {
            for _ in 0..rng.gen_range(1..4) {
                w.push(pick(rng, ELEMS));
            }
        }
        "LPOS" => {
            for _ in 0..rng.gen_range(0..3) {
                w.push(pick(rng, &["RANK", "COUNT", "MAXLEN"]));
                w.push(pick(rng, INTS));
            }
        }
        "LMPOP" | "BLMPOP" if rng.gen() => w.extend(["COUNT".to_string(), pick(rng, INTS)]),
        _ => {}
    }
    w
}

fn answer(c: &mut Connection, words: &[String]) -> String {
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    match cmd(&args).query::<Value>(c) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {}", error_text(&e)),
    }
}

#[test]
fn random_commands_answer_as_redis_server_does_and_survive_sigkill() {
    if !redis_server_available() {
        eprintln!("redis-server not installed; skipping");
        return;
    }
    let redis = RedisServer::start().expect("redis-server starts");
    let mut s = Server::start(&["--appendfsync", "always"]);
    let (mut theirs, mut ours) = (redis.client(), s.client());
    q::<()>(&mut theirs, &["SET", "{z}s", "string"]);
    q::<()>(&mut ours, &["SET", "{z}s", "string"]);
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for round in 0..4 {
        for i in 0..400 {
            let words = random_command(&mut rng);
            let (want, got) = (answer(&mut theirs, &words), answer(&mut ours, &words));
            assert_eq!(got, want, "seed {seed} round {round} command {i}: {words:?}");
        }
        s.kill();
        s.restart();
        ours = s.client();
        assert_eq!(all_lists(&mut ours), all_lists(&mut theirs), "seed {seed} round {round}: after SIGKILL");
        assert_eq!(q::<String>(&mut ours, &["GET", "{z}s"]), "string");
    }
}

#[test]
fn every_list_command_refuses_every_other_type() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["SET", "{o}string", "x"]);
    let _: () = q(&mut c, &["HSET", "{o}hash", "f", "v"]);
    let _: () = q(&mut c, &["SADD", "{o}set", "m"]);
    let _: () = q(&mut c, &["ZADD", "{o}zset", "1", "m"]);
    for key in ["{o}string", "{o}hash", "{o}set", "{o}zset"] {
        let commands: &[&[&str]] = &[
            &["LPUSH", key, "a"],
            &["RPUSHX", key, "a"],
            &["LPOP", key],
            &["RPOP", key, "2"],
            &["LLEN", key],
            &["LRANGE", key, "0", "-1"],
            &["LINDEX", key, "0"],
            &["LSET", key, "0", "a"],
            &["LINSERT", key, "BEFORE", "a", "b"],
            &["LREM", key, "0", "a"],
            &["LTRIM", key, "0", "1"],
            &["LPOS", key, "a"],
            &["LMOVE", key, "{o}dst", "LEFT", "RIGHT"],
            &["LMPOP", "1", key, "LEFT"],
            &["BLPOP", key, "0.01"],
        ];
        for args in commands {
            assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
        }
    }
    assert_eq!(q::<String>(&mut c, &["TYPE", "{o}zset"]), "zset", "nothing changed the keys");
}
