//! Keyspace notifications (`notify-keyspace-events`), with every Redis class.
//!
//! Every write a command makes goes through one funnel
//! ([`crate::command::strings::write`]); when notifications are on, it
//! turns the op it wrote, the command's name and whether the key existed
//! before and after into Redis's events ([`events_for`]). Expiry and key
//! misses happen inside the keyspace, which records them while asked to
//! ([`capture`]); the shard drains them after each command and after each
//! active-expiry slice. Events are published like PUBLISH on
//! `__keyspace@<db>__:<key>` (message: the event) and
//! `__keyevent@<db>__:<event>` (message: the key): delivered to this
//! shard's subscribers at once, and to the other shards in order through
//! one forwarding queue per shard.

use std::borrow::Cow;

use strand_engine::keyspace::queue::{QueueChange, QueueOp};
use strand_engine::keyspace::stream::StreamChange;
use strand_engine::keyspace::{Capture, Change, KeyEvent, KeyEventKind, Op, Type, Value};

/// `g`: generic commands (DEL, EXPIRE, RENAME ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expired keys.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evicted keys.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: reads of missing keys.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key types.
pub const MODULE: u32 = 1 << 12;
/// `n`: new keys.
pub const NEW: u32 = 1 << 13;
/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `A`: `g$lshzxetd`.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's error for a bad class character.
pub const BAD_FLAGS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

const CLASSES: &[(char, u32)] = &[
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
];

/// Parses a notify-keyspace-events string; None on a character Redis does not know.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            'n' => NEW,
            c => CLASSES.iter().find(|(k, _)| *k == c)?.1,
        };
    }
    Some(flags)
}

/// The canonical string CONFIG GET shows (as Redis: `A` for all classes, then K, E, m, n).
pub fn format_flags(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        out.extend(CLASSES.iter().filter(|(_, f)| flags & f != 0).map(|(c, _)| *c));
    }
    for (c, f) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS), ('n', NEW)] {
        if flags & f != 0 {
            out.push(c);
        }
    }
    out
}

/// Whether any event would be published at all.
pub fn enabled(flags: u32) -> bool {
    flags & (KEYSPACE | KEYEVENT) != 0 && flags & (ALL | KEY_MISS | NEW) != 0
}

/// What the keyspace must record for `flags`.
pub fn capture(flags: u32) -> Capture {
    let on = enabled(flags);
    Capture { expired: on && flags & EXPIRED != 0, misses: on && flags & KEY_MISS != 0, evicted: on && flags & EVICTED != 0 }
}

/// One event: its class, name, database and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Class bit.
    pub class: u32,
    /// Event name (`set`, `lpush`, `expired` ...).
    pub name: Cow<'static, str>,
    /// Database.
    pub db: u8,
    /// Key.
    pub key: Vec<u8>,
}

fn ev(class: u32, name: &'static str, db: u8, key: &[u8]) -> Event {
    Event { class, name: Cow::Borrowed(name), db, key: key.to_vec() }
}

fn type_class(t: Type) -> u32 {
    match t {
        Type::Str => STRING,
        Type::Hash => HASH,
        Type::List => LIST,
        Type::Set => SET,
        Type::ZSet => ZSET,
        Type::Stream => STREAM,
        Type::Queue => GENERIC,
        Type::Series | Type::Sug => MODULE,
    }
}

/// Redis's event name for a change made by command `cmd` (lower case),
/// None for the changes Redis does not announce (stream reads and acks).
fn change_event(cmd: &str, change: &Change<'_>) -> Option<&'static str> {
    Some(match change {
        Change::HSet(_) => match cmd {
            "hincrby" => "hincrby",
            "hincrbyfloat" => "hincrbyfloat",
            _ => "hset",
        },
        Change::HDel(_) => "hdel",
        Change::LPush { left: true, .. } => "lpush",
        Change::LPush { left: false, .. } => "rpush",
        Change::LPop { left: true, .. } => "lpop",
        Change::LPop { left: false, .. } => "rpop",
        Change::LSet { .. } => "lset",
        Change::LInsert { .. } => "linsert",
        Change::LRem { .. } => "lrem",
        Change::LTrim { .. } => "ltrim",
        Change::SAdd(_) => "sadd",
        Change::SRem(_) => match cmd {
            "spop" => "spop",
            _ => "srem",
        },
        Change::ZAdd(_) => match cmd {
            "zincrby" => "zincr",
            _ => "zadd",
        },
        Change::ZRem(_) => match cmd {
            "zremrangebyscore" => "zremrangebyscore",
            "zremrangebyrank" => "zremrangebyrank",
            "zremrangebylex" => "zremrangebylex",
            "zpopmin" | "bzpopmin" => "zpopmin",
            "zpopmax" | "bzpopmax" => "zpopmax",
            _ => "zrem",
        },
        Change::TsCreate(_) => "ts.create",
        Change::TsAlter(_) => "ts.alter",
        Change::TsAdd(_) => match cmd {
            "ts.incrby" => "ts.incrby",
            "ts.decrby" => "ts.decrby",
            _ => "ts.add",
        },
        Change::TsDel { .. } => "ts.del",
        Change::TsRule { .. } | Change::TsSource(_) => "ts.createrule",
        Change::TsUnrule(_) => "ts.deleterule",
        Change::Stream(c) => return stream_event(c),
        Change::Queue(c) => return queue_event(c),
        Change::SugAdd { .. } => "ft.sugadd",
        Change::SugDel(_) => "ft.sugdel",
    })
}

fn queue_event(c: &QueueChange<'_>) -> Option<&'static str> {
    Some(match c.op {
        QueueOp::Push(_) => "qpush",
        QueueOp::Lease { .. } => "qpop",
        QueueOp::Ack(_) => "qack",
        QueueOp::Nack { .. } => "qnack",
        QueueOp::Delete(_) => "qdel",
        QueueOp::Purge => "qpurge",
        _ => return None,
    })
}

fn stream_event(c: &StreamChange<'_>) -> Option<&'static str> {
    Some(match c {
        StreamChange::Add { .. } | StreamChange::IdmpAdd { .. } => "xadd",
        StreamChange::IdmpConfig { .. } | StreamChange::Retention(_) => "xcfgset",
        StreamChange::IdmpDuplicate => return None,
        StreamChange::Trim { .. } => "xtrim",
        StreamChange::Del(_) => "xdel",
        StreamChange::SetId { .. } => "xsetid",
        StreamChange::GroupCreate { .. } => "xgroup-create",
        StreamChange::GroupSetId { .. } => "xgroup-setid",
        StreamChange::GroupDestroy { .. } => "xgroup-destroy",
        StreamChange::ConsumerCreate { .. } => "xgroup-createconsumer",
        StreamChange::ConsumerDel { .. } => "xgroup-delconsumer",
        StreamChange::Deliver(_) | StreamChange::Ack { .. } | StreamChange::Unref(_) => return None,
    })
}

/// The events of one op written by command `cmd`. `existed`/`exists`: the
/// op's key before and after (for `new`, and `del` of an emptied collection).
pub fn events_for(cmd: &str, op: &Op<'_>, existed: bool, exists: bool, now: u64) -> Vec<Event> {
    let mut out = Vec::new();
    let created = !existed && exists;
    match op {
        Op::Set { db, key, expire_ms, .. } => {
            let name = match cmd {
                "incr" | "incrby" | "decr" | "decrby" => "incrby",
                "incrbyfloat" => "incrbyfloat",
                _ => "set",
            };
            out.push(ev(STRING, name, *db, key));
            if *expire_ms != 0 && matches!(cmd, "set" | "setex" | "psetex") {
                out.push(ev(GENERIC, "expire", *db, key));
            }
        }
        Op::Append { db, key, .. } => out.push(ev(STRING, "append", *db, key)),
        Op::SetRange { db, key, .. } => out.push(ev(STRING, "setrange", *db, key)),
        Op::MSet { db, pairs } => out.extend(pairs.iter().map(|(k, _)| ev(STRING, "set", *db, k))),
        Op::Del { db, key } => out.push(ev(GENERIC, "del", *db, key)),
        Op::Expire { db, key, expire_ms } => {
            let name = match *expire_ms {
                0 => "persist",
                t if t <= now => "del",
                _ => "expire",
            };
            out.push(ev(GENERIC, name, *db, key));
        }
        Op::Rename { db, src, dst } => {
            out.push(ev(GENERIC, "rename_from", *db, src));
            out.push(ev(GENERIC, "rename_to", *db, dst));
        }
        Op::Copy { dst_db, dst, .. } => out.push(ev(GENERIC, "copy_to", *dst_db, dst)),
        Op::Move { db, key, dst_db } => {
            out.push(ev(GENERIC, "move_from", *db, key));
            out.push(ev(GENERIC, "move_to", *dst_db, key));
        }
        Op::Coll { db, key, change } => {
            if let Some(name) = change_event(cmd, change) {
                out.push(ev(type_class(change.target()), name, *db, key));
            }
            if existed && !exists {
                out.push(ev(GENERIC, "del", *db, key));
            }
        }
        Op::Store { db, key, value, .. } => {
            let class = type_class(value.kind());
            let name: Cow<'static, str> = match value.as_ref() {
                Value::Str(_) => Cow::Borrowed("set"),
                _ => Cow::Owned(cmd.to_string()),
            };
            out.push(Event { class, name, db: *db, key: key.to_vec() });
        }
        Op::Group(ops) => {
            for op in ops {
                out.extend(events_for(cmd, op, existed, exists, now));
            }
        }
        Op::SwapDb { .. } | Op::FlushDb { .. } | Op::FlushAll | Op::Search { .. } => {}
    }
    if created {
        if let Some((db, key)) = op_key(op) {
            out.insert(0, ev(NEW, "new", db, key));
        }
    }
    out
}

/// The one key an op creates or removes, for the existence checks around it.
pub fn op_key<'a>(op: &Op<'a>) -> Option<(u8, &'a [u8])> {
    match *op {
        Op::Set { db, key, .. }
        | Op::Append { db, key, .. }
        | Op::SetRange { db, key, .. }
        | Op::Coll { db, key, .. }
        | Op::Store { db, key, .. } => Some((db, key)),
        _ => None,
    }
}

/// Events the keyspace recorded by itself.
pub fn from_key_event(e: &KeyEvent) -> Event {
    match e.kind {
        KeyEventKind::Expired => ev(EXPIRED, "expired", e.db, &e.key),
        KeyEventKind::Miss => ev(KEY_MISS, "keymiss", e.db, &e.key),
        KeyEventKind::Evicted => ev(EVICTED, "evicted", e.db, &e.key),
    }
}

/// The (channel, message) pairs to publish for events under `flags`.
pub fn messages(flags: u32, events: &[Event]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for e in events.iter().filter(|e| flags & e.class != 0) {
        if flags & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{}__:", e.db).into_bytes();
            ch.extend_from_slice(&e.key);
            out.push((ch, e.name.as_bytes().to_vec()));
        }
        if flags & KEYEVENT != 0 {
            out.push((format!("__keyevent@{}__:{}", e.db, e.name).into_bytes(), e.key.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_as_redis_prints_them() {
        assert_eq!(parse_flags("KA").map(format_flags).as_deref(), Some("AK"));
        assert_eq!(parse_flags("g$lshzxetdmnKE").map(format_flags).as_deref(), Some("AKEmn"));
        assert_eq!(parse_flags("Elg").map(format_flags).as_deref(), Some("glE"));
        assert_eq!(parse_flags("").map(format_flags).as_deref(), Some(""));
        assert_eq!(parse_flags("Kq"), None);
        assert!(!enabled(parse_flags("A").unwrap_or(0)));
        assert!(enabled(parse_flags("Kx").unwrap_or(0)));
    }

    #[test]
    fn events_name_what_the_command_did() {
        let op = Op::Set { db: 0, key: b"k", value: b"1", expire_ms: 5 };
        let names: Vec<String> = events_for("set", &op, false, true, 0).into_iter().map(|e| e.name.into_owned()).collect();
        assert_eq!(names, ["new", "set", "expire"]);
        let op = Op::Coll { db: 0, key: b"l", change: Change::LPop { left: true, count: 1 } };
        let names: Vec<String> = events_for("lpop", &op, true, false, 0).into_iter().map(|e| e.name.into_owned()).collect();
        assert_eq!(names, ["lpop", "del"]);
        let op = Op::Expire { db: 0, key: b"k", expire_ms: 0 };
        assert_eq!(events_for("persist", &op, true, true, 10)[0].name, "persist");
    }
}
