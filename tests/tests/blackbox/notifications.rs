//! Keyspace notifications: every class of `notify-keyspace-events`, both
//! channel families, events from any shard, expiry and key misses.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use strand_tests::commands::{err, q};
use strand_tests::Server;

/// A subscriber reading RESP2 arrays of bulk strings.
struct Sub(BufReader<TcpStream>);

impl Sub {
    fn new(s: &Server, pattern: &str) -> Sub {
        let addr = s.url().trim_start_matches("redis://").trim_end_matches('/').to_string();
        let t = TcpStream::connect(addr).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sub = Sub(BufReader::new(t));
        sub.0.get_mut().write_all(format!("PSUBSCRIBE {pattern}\r\n").as_bytes()).unwrap();
        assert_eq!(sub.next()[0], "psubscribe");
        sub
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.0.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    fn next(&mut self) -> Vec<String> {
        let head = self.line();
        let n: usize = head.strip_prefix('*').unwrap_or_else(|| panic!("not an array: {head:?}")).parse().unwrap();
        (0..n)
            .map(|_| {
                let h = self.line();
                if let Some(i) = h.strip_prefix(':') {
                    return i.to_string();
                }
                let len: usize = h.strip_prefix('$').unwrap().parse().unwrap();
                let mut b = vec![0u8; len + 2];
                self.0.read_exact(&mut b).unwrap();
                String::from_utf8_lossy(&b[..len]).into_owned()
            })
            .collect()
    }

    /// The next pmessage as (channel, message).
    fn event(&mut self) -> (String, String) {
        let m = self.next();
        assert_eq!(m[0], "pmessage", "{m:?}");
        (m[2].clone(), m[3].clone())
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn config_parses_and_prints_flags_as_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]), vec!["notify-keyspace-events", ""]);
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KA"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "notify-keyspace-events"])[1], "AK");
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Elg"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "notify-keyspace-events"])[1], "glE");
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Kq"]),
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    );
}

#[test]
fn keyspace_and_keyevent_channels_carry_generic_and_string_events() {
    let s = Server::start(&["--notify-keyspace-events", "KEA"]);
    let mut c = s.client();
    let mut space = Sub::new(&s, "__keyspace@0__:*");
    let mut event = Sub::new(&s, "__keyevent@0__:*");
    // Keys on both shards, whichever shard the subscribers are on.
    for key in ["{a}k", "{b}k"] {
        let _: () = q(&mut c, &["SET", key, "1"]);
        let _: () = q(&mut c, &["INCRBY", key, "5"]);
        let _: () = q(&mut c, &["EXPIRE", key, "100"]);
        let _: () = q(&mut c, &["PERSIST", key]);
        let _: () = q(&mut c, &["DEL", key]);
        let _: () = q(&mut c, &["DEL", key]); // nothing deleted: no event
        let want = ["set", "incrby", "expire", "persist", "del"];
        for name in want {
            assert_eq!(space.event(), (format!("__keyspace@0__:{key}"), name.to_string()));
            assert_eq!(event.event(), (format!("__keyevent@0__:{name}"), key.to_string()));
        }
    }
    let _: () = q(&mut c, &["SET", "{a}src", "v"]);
    let _: () = q(&mut c, &["RENAME", "{a}src", "{a}dst"]);
    assert_eq!(
        vec![space.event(), space.event(), space.event()],
        pairs(&[("__keyspace@0__:{a}src", "set"), ("__keyspace@0__:{a}src", "rename_from"), ("__keyspace@0__:{a}dst", "rename_to")])
    );
}

#[test]
fn expired_keys_and_misses_and_new_keys_are_reported() {
    let s = Server::start(&["--notify-keyspace-events", "Exmn"]);
    let mut c = s.client();
    let mut event = Sub::new(&s, "__keyevent@*");
    let _: () = q(&mut c, &["SET", "gone", "1", "PX", "30"]);
    assert_eq!(event.event(), ("__keyevent@0__:new".to_string(), "gone".to_string()));
    // Active expiry finds it without anyone reading it.
    assert_eq!(event.event(), ("__keyevent@0__:expired".to_string(), "gone".to_string()));
    let _: Option<String> = q(&mut c, &["GET", "missing"]);
    assert_eq!(event.event(), ("__keyevent@0__:keymiss".to_string(), "missing".to_string()));
}

#[test]
fn only_the_chosen_classes_are_published() {
    let s = Server::start(&["--notify-keyspace-events", "K$"]);
    let mut c = s.client();
    let mut space = Sub::new(&s, "__keyspace@*");
    let _: () = q(&mut c, &["SET", "k", "1"]);
    let _: () = q(&mut c, &["EXPIRE", "k", "100"]); // generic: not chosen
    let _: () = q(&mut c, &["APPEND", "k", "2"]);
    assert_eq!(space.event(), ("__keyspace@0__:k".to_string(), "set".to_string()));
    assert_eq!(space.event(), ("__keyspace@0__:k".to_string(), "append".to_string()));
    // Turned off at run time: nothing more arrives.
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", ""]);
    let _: () = q(&mut c, &["SET", "k", "2"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "K$"]);
    let _: () = q(&mut c, &["SET", "k", "3"]);
    assert_eq!(space.event(), ("__keyspace@0__:k".to_string(), "set".to_string()));
    let _: () = q(&mut c, &["SELECT", "2"]);
    let _: () = q(&mut c, &["SET", "k", "3"]);
    assert_eq!(space.event(), ("__keyspace@2__:k".to_string(), "set".to_string()));
}

#[test]
fn every_type_names_its_events_and_emptied_keys_report_del() {
    let s = Server::start(&["--notify-keyspace-events", "KA"]);
    let mut c = s.client();
    let mut space = Sub::new(&s, "__keyspace@0__:*");
    let _: () = q(&mut c, &["RPUSH", "{t}l", "a", "b"]);
    let _: () = q(&mut c, &["LPOP", "{t}l", "2"]);
    let _: () = q(&mut c, &["HSET", "{t}h", "f", "1"]);
    let _: () = q(&mut c, &["HINCRBY", "{t}h", "f", "2"]);
    let _: () = q(&mut c, &["SADD", "{t}s", "m"]);
    let _: () = q(&mut c, &["SPOP", "{t}s"]);
    let _: () = q(&mut c, &["ZADD", "{t}z", "1", "m"]);
    let _: () = q(&mut c, &["ZINCRBY", "{t}z", "1", "m"]);
    let _: () = q(&mut c, &["EVAL", "redis.call('INCR', KEYS[1])", "1", "{t}n"]);
    let got: Vec<(String, String)> = (0..11).map(|_| space.event()).collect();
    let want = [
        ("{t}l", "rpush"),
        ("{t}l", "lpop"),
        ("{t}l", "del"),
        ("{t}h", "hset"),
        ("{t}h", "hincrby"),
        ("{t}s", "sadd"),
        ("{t}s", "spop"),
        ("{t}s", "del"),
        ("{t}z", "zadd"),
        ("{t}z", "zincr"),
        ("{t}n", "incrby"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(k, e)| (format!("__keyspace@0__:{k}"), e.to_string())).collect();
    assert_eq!(got, want);
}

/// Stream events as Redis names them, including the consumer an XREADGROUP
/// creates and strand's XCFGSET.
#[test]
fn stream_events_name_the_consumer_a_read_creates() {
    let s = Server::start(&["--notify-keyspace-events", "KEA"]);
    let mut c = s.client();
    let mut events = Sub::new(&s, "__keyevent@0__:*");
    let _: () = q(&mut c, &["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"]);
    let _: redis::Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", ">"]);
    let _: String = q(&mut c, &["XADD", "st", "*", "f", "v"]);
    let _: redis::Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", ">"]);
    let _: redis::Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "st", ">"]);
    let _: () = q(&mut c, &["XCFGSET", "st", "RETENTION-MS", "60000"]);
    let got: Vec<String> = (0..5).map(|_| events.event().0).collect();
    let want = ["xgroup-create", "xgroup-createconsumer", "xadd", "xgroup-createconsumer", "xcfgset"];
    assert_eq!(got, want.map(|e| format!("__keyevent@0__:{e}")));
}
