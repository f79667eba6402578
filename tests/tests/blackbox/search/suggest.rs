//! Autocomplete (FT.SUGADD / SUGGET / SUGDEL / SUGLEN), spell-check
//! dictionaries (FT.DICTADD / DICTDEL / DICTDUMP) and FT.SPELLCHECK: options,
//! reply shapes, keyspace behaviour (TYPE, DEL, RENAME, EXPIRE), several
//! shards, and state that survives a SIGKILL (log replay) and SAVE (checkpoint).

use redis::{Connection, Value};
use strand_tests::commands::{err, q};
use strand_tests::Server;

/// A reply as compact text: arrays in brackets, strings bare, nil as `nil`.
fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Double(d) => d.to_string(),
        Value::Array(items) | Value::Set(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(",")),
        other => format!("{other:?}"),
    }
}

fn run(c: &mut Connection, args: &[&str]) -> String {
    let v: Value = q(c, args);
    show(&v)
}

#[test]
fn sugadd_sugget_sugdel_suglen() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "Hello World", "1"]), "1");
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "hello", "1", "PAYLOAD", "p1"]), "2");
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "help", "3"]), "3");
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "world", "9"]), "4");
    assert_eq!(run(&mut c, &["TYPE", "{ac}"]), "trietype0");
    assert_eq!(run(&mut c, &["FT.SUGLEN", "{ac}"]), "4");
    assert_eq!(run(&mut c, &["FT.SUGLEN", "nokey"]), "0");
    // Ranked by score × prefix length / length; case folded, original strings back.
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "HEL"]), "[help,hello,Hello World]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "hel", "MAX", "1"]), "[help]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "hello", "WITHSCORES", "WITHPAYLOADS", "MAX", "1"]), "[hello,1,p1]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "hello w", "WITHSCORES"]), "[Hello World,0.6363636363636364]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "help", "WITHPAYLOADS"]), "[help,nil]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "xyz"]), "[]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "nokey", "h"]), "[]");
    // FUZZY: one edit on the prefix.
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "wprld"]), "[]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "wprld", "FUZZY"]), "[world]");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "jel", "FUZZY", "MAX", "2"]), "[help,hello]");
    // INCR adds to the score and keeps the payload; a re-add replaces the score.
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "HELLO", "5", "INCR"]), "4");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "hello", "WITHSCORES", "WITHPAYLOADS", "MAX", "1"]), "[HELLO,6,p1]");
    assert_eq!(run(&mut c, &["FT.SUGADD", "{ac}", "hello", "2"]), "4");
    assert_eq!(run(&mut c, &["FT.SUGGET", "{ac}", "hello", "WITHSCORES", "MAX", "1"]), "[hello,2]");
    // SUGDEL is case-insensitive too.
    assert_eq!(run(&mut c, &["FT.SUGDEL", "{ac}", "HELP"]), "1");
    assert_eq!(run(&mut c, &["FT.SUGDEL", "{ac}", "help"]), "0");
    assert_eq!(run(&mut c, &["FT.SUGLEN", "{ac}"]), "3");
    // Errors.
    assert_eq!(err(&mut c, &["FT.SUGADD", "{ac}", "x", "notanumber"]), "ERR invalid score");
    assert_eq!(err(&mut c, &["FT.SUGGET", "{ac}", "h", "MAX", "-1"]), "ERR Invalid value for MAX");
    assert_eq!(err(&mut c, &["FT.SUGGET", "{ac}", "h", "BOGUS"]), "ERR syntax error");
    let _: i64 = q(&mut c, &["SADD", "aset", "x"]);
    assert!(err(&mut c, &["FT.SUGADD", "aset", "x", "1"]).starts_with("WRONGTYPE"));
    assert!(err(&mut c, &["FT.SUGGET", "aset", "x"]).starts_with("WRONGTYPE"));
    // A key like any other: RENAME, EXPIRE, DEL, memory accounting; the last SUGDEL removes it.
    assert!(q::<i64>(&mut c, &["MEMORY", "USAGE", "{ac}"]) > 0);
    assert_eq!(run(&mut c, &["RENAME", "{ac}", "{ac}2"]), "OK");
    assert_eq!(run(&mut c, &["FT.SUGLEN", "{ac}2"]), "3");
    assert_eq!(run(&mut c, &["PEXPIRE", "{ac}2", "1"]), "1");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(run(&mut c, &["FT.SUGLEN", "{ac}2"]), "0");
    assert_eq!(run(&mut c, &["FT.SUGADD", "one", "x", "1"]), "1");
    assert_eq!(run(&mut c, &["FT.SUGDEL", "one", "x"]), "1");
    assert_eq!(run(&mut c, &["EXISTS", "one"]), "0");
    assert_eq!(run(&mut c, &["FT.SUGADD", "two", "x", "1"]), "1");
    assert_eq!(run(&mut c, &["DEL", "two"]), "1");
}

fn fill_suggestions(c: &mut Connection) {
    for (i, key) in ["s:a", "s:b", "s:c", "s:d"].iter().enumerate() {
        for j in 0..20 {
            let word = format!("Word{i}-{j:02}");
            let score = format!("{}", j + 1);
            let _: i64 = q(c, &["FT.SUGADD", key, &word, &score, "PAYLOAD", &format!("p{j}")]);
        }
        let _: i64 = q(c, &["FT.SUGADD", key, "word0-00", "100", "INCR"]);
        let _: i64 = q(c, &["FT.SUGDEL", key, "WORD0-01"]);
    }
}

fn dump_suggestions(c: &mut Connection) -> Vec<String> {
    ["s:a", "s:b", "s:c", "s:d"].iter().map(|k| run(c, &["FT.SUGGET", k, "word", "WITHSCORES", "WITHPAYLOADS", "MAX", "100"])).collect()
}

#[test]
fn suggestions_and_dictionaries_survive_restarts() {
    // Every acknowledged write is in the log before a SIGKILL.
    let mut s = Server::start(&["--shards", "3", "--appendfsync", "always"]);
    let mut c = s.client();
    fill_suggestions(&mut c);
    assert_eq!(run(&mut c, &["FT.DICTADD", "dict", "foo", "bar", "foo"]), "2");
    assert_eq!(run(&mut c, &["FT.DICTADD", "dict", "foo", "baz"]), "1");
    assert_eq!(run(&mut c, &["FT.DICTDEL", "dict", "bar", "nope"]), "1");
    assert_eq!(run(&mut c, &["FT.DICTADD", "other", "x"]), "1");
    let live = dump_suggestions(&mut c);
    // INCR renamed Word0-00 to the spelling it was given; rank 101 × 4/8.
    assert!(live[0].starts_with("[word0-00,50.5,p0,Word0-19,10,p19,"), "{}", live[0]);
    assert!(live[1].starts_with("[word0-00,50,nil,Word1-19,10,p19,"), "{}", live[1]);
    let dicts = |c: &mut Connection| (run(c, &["FT.DICTDUMP", "dict"]), run(c, &["FT.DICTDUMP", "other"]));
    assert_eq!(dicts(&mut c), ("[baz,foo]".to_string(), "[x]".to_string()));

    // Log replay after SIGKILL.
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(dump_suggestions(&mut c), live, "after SIGKILL");
    assert_eq!(dicts(&mut c), ("[baz,foo]".to_string(), "[x]".to_string()));

    // Checkpoint, then more writes in the log after it.
    assert_eq!(run(&mut c, &["SAVE"]), "OK");
    assert_eq!(run(&mut c, &["FT.DICTDEL", "other", "x"]), "1");
    assert_eq!(run(&mut c, &["FT.SUGADD", "s:a", "word0-19", "1"]), "19");
    let live = dump_suggestions(&mut c);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(dump_suggestions(&mut c), live, "after SAVE and SIGKILL");
    assert_eq!(run(&mut c, &["FT.DICTDUMP", "dict"]), "[baz,foo]");
    assert_eq!(err(&mut c, &["FT.DICTDUMP", "other"]), "ERR could not open dict key");
    assert_eq!(run(&mut c, &["SAVE"]), "OK");
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(dump_suggestions(&mut c), live, "after a second SAVE");
    for _ in 0..6 {
        // New connections land on any shard: each holds the dictionary.
        assert_eq!(run(&mut s.client(), &["FT.DICTDUMP", "dict"]), "[baz,foo]");
    }
    assert_eq!(run(&mut c, &["FT.DICTDUMP", "dict"]), "[baz,foo]");
    // Every shard holds the dictionary: DICTDEL counts once, whatever shard answers.
    assert_eq!(run(&mut c, &["FT.DICTDEL", "dict", "foo", "baz"]), "2");
    assert_eq!(err(&mut c, &["FT.DICTDUMP", "dict"]), "ERR could not open dict key");
}

fn hset(c: &mut Connection, key: &str, body: &str) {
    let _: i64 = q(c, &["HSET", key, "body", body, "tag", "red"]);
}

#[test]
fn spellcheck_over_shards_with_dictionaries() {
    for shards in ["1", "3"] {
        let s = Server::start(&["--shards", shards]);
        let mut c = s.client();
        let _: String = q(&mut c, &["FT.CREATE", "idx", "PREFIX", "1", "d:", "SCHEMA", "body", "TEXT", "tag", "TAG"]);
        hset(&mut c, "d:1", "hello world");
        hset(&mut c, "d:2", "hello there help");
        hset(&mut c, "d:3", "held hollow");
        hset(&mut c, "d:4", "world peace");
        // 4 documents: hello in 2, help 1, held 1.
        assert_eq!(
            run(&mut c, &["FT.SPELLCHECK", "idx", "helo wrld"]),
            "[[TERM,helo,[[0.5,hello],[0.25,held],[0.25,help]]],[TERM,wrld,[[0.5,world]]]]",
            "{shards} shards"
        );
        // Known terms, stop-words, negations and tags are not checked; a term with no suggestion has [].
        assert_eq!(run(&mut c, &["FT.SPELLCHECK", "idx", "hello the -helo @tag:{helo} zzzzzz"]), "[[TERM,zzzzzz,[]]]");
        assert_eq!(run(&mut c, &["FT.SPELLCHECK", "idx", "hollo", "DISTANCE", "2"]), "[[TERM,hollo,[[0.5,hello],[0.25,hollow]]]]");
        // Dictionaries: INCLUDE adds their near terms (score 0); EXCLUDE exempts the terms they hold.
        assert_eq!(run(&mut c, &["FT.DICTADD", "mine", "helox", "wrld"]), "2");
        assert_eq!(
            run(&mut c, &["FT.SPELLCHECK", "idx", "helo wrld", "TERMS", "INCLUDE", "mine", "TERMS", "EXCLUDE", "mine", "DIALECT", "2"]),
            "[[TERM,helo,[[0.5,hello],[0.25,held],[0.25,help],[0,helox]]]]"
        );
        assert_eq!(run(&mut c, &["FT.SPELLCHECK", "idx", "wrld", "TERMS", "EXCLUDE", "mine"]), "[]");
        assert_eq!(err(&mut c, &["FT.SPELLCHECK", "idx", "helo", "DISTANCE", "5"]), "ERR distance must be a number between 1 and 4");
        assert_eq!(err(&mut c, &["FT.SPELLCHECK", "idx", "helo", "TERMS", "INCLUDE", "nodict"]), "ERR Dict does not exist: nodict");
        assert_eq!(err(&mut c, &["FT.SPELLCHECK", "nope", "helo"]), "nope: no such index");
    }
}
