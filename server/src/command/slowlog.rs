//! The slow log: [SLOWLOG](https://redis.io/commands/slowlog/) GET, LEN, RESET and HELP.
//!
//! A command whose time on its shard reaches `slowlog-log-slower-than`
//! microseconds (-1: never, 0: always) is kept in that shard's [`SlowLog`],
//! newest first, at most `slowlog-max-len` entries. Entry ids come from one
//! counter shared by all shards, so they are unique and increase with time;
//! SLOWLOG GET asks every shard and merges their entries by id, newest
//! first, and keeps at most `slowlog-max-len` of them, as one log would.
//! Arguments are cut as Redis cuts them: at most 32 (the last one says how
//! many more there were), each at most 128 bytes (then how many more bytes).
//! The client's address and name are known when the client lives on the
//! shard that ran the command (connections move to the shard that owns
//! their keys); otherwise they are empty.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::server::{help, unknown_sub};
use super::table::CmdId;
use super::{flags::*, keyless, Command, Ctx, Merge, Route};
use crate::reply::Reply;
use crate::shard::ShardState;

/// Arguments kept per entry, as Redis's SLOWLOG_ENTRY_MAX_ARGC.
pub const MAX_ARGC: usize = 32;
/// Bytes kept per argument, as Redis's SLOWLOG_ENTRY_MAX_STRING.
pub const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique, increasing across shards.
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    /// Its time on the shard, in microseconds.
    pub micros: u64,
    /// Its arguments, cut to [`MAX_ARGC`] and [`MAX_STRING`].
    pub args: Vec<Vec<u8>>,
    /// The client's address (empty if it lives on another shard).
    pub addr: String,
    /// The client's name.
    pub name: Vec<u8>,
}

/// One shard's slow log, newest first.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
}

impl SlowLog {
    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The arguments as an entry keeps them.
pub fn cut_args(args: &[&[u8]], redact: bool) -> Vec<Vec<u8>> {
    let argc = args.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(argc);
    for (j, a) in args.iter().take(argc).enumerate() {
        if argc != args.len() && j == argc - 1 {
            out.push(format!("... ({} more arguments)", args.len() - argc + 1).into_bytes());
        } else if redact && j > 0 {
            out.push(b"(redacted)".to_vec());
        } else if a.len() > MAX_STRING {
            let mut v = a[..MAX_STRING].to_vec();
            v.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            out.push(v);
        } else {
            out.push(a.to_vec());
        }
    }
    out
}

/// Logs a command that took `micros` on shard `st` (the caller checked the threshold).
pub fn record(st: &mut ShardState, id: CmdId, micros: u64, caller: u64, args: &[&[u8]]) {
    let max = st.config.slowlog_max_len;
    if max == 0 {
        return;
    }
    let name = super::table::by_id(id).map_or("", |c| c.name);
    // EXEC's commands are logged one by one; AUTH and HELLO carry passwords.
    if name == "exec" {
        return;
    }
    let redact = matches!(name, "auth" | "hello");
    let (addr, cname) = st.clients.get(&caller).map(|c| (c.borrow().addr.clone(), c.borrow().name.clone())).unwrap_or_default();
    let entry = Entry {
        id: st.shared.next_slowlog_id.fetch_add(1, Ordering::Relaxed),
        time: strand_engine::clock::unix_ms() / 1000,
        micros,
        args: cut_args(args, redact),
        addr,
        name: cname,
    };
    let log = &mut st.slowlog.entries;
    log.push_front(entry);
    log.truncate(max);
}

fn entry_reply(e: &Entry) -> Reply {
    Reply::Array(vec![
        Reply::Int(e.id as i64),
        Reply::Int(e.time as i64),
        Reply::Int(e.micros as i64),
        Reply::Array(e.args.iter().map(Reply::bulk).collect()),
        Reply::bulk(&e.addr),
        Reply::bulk(&e.name),
    ])
}

fn slowlog_container(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    unknown_sub(args[1], "SLOWLOG")
}

fn slowlog_help(_: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    help(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ])
}

/// One shard's part of SLOWLOG GET: `[limit, [entry ...]]`, its newest `limit` entries.
fn slowlog_get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if args.len() > 3 {
        return Reply::error("ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.");
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => match super::strings::parse_i64(a) {
            None => return Reply::error(super::err::NOT_INTEGER),
            Some(n) if n < -1 => return Reply::error("ERR count should be greater than or equal to -1"),
            Some(-1) => usize::MAX,
            Some(n) => n as usize,
        },
    };
    let limit = count.min(ctx.shard.config.slowlog_max_len);
    let entries = ctx.shard.slowlog.entries.iter().take(limit).map(entry_reply).collect();
    Reply::Array(vec![Reply::Int(limit as i64), Reply::Array(entries)])
}

fn entry_id(e: &Reply) -> i64 {
    match e {
        Reply::Array(f) => match f.first() {
            Some(Reply::Int(id)) => *id,
            _ => 0,
        },
        _ => 0,
    }
}

/// Joins the shards' SLOWLOG GET parts: newest first by id, at most the limit.
fn merge_get(parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let mut limit = 0usize;
    let mut all = Vec::new();
    for p in parts {
        let Reply::Array(mut v) = p else { continue };
        if let (Some(Reply::Array(entries)), Some(Reply::Int(l))) = (v.pop(), v.pop()) {
            limit = l.max(0) as usize;
            all.extend(entries);
        }
    }
    all.sort_by_key(|e| std::cmp::Reverse(entry_id(e)));
    all.truncate(limit);
    Reply::Array(all)
}

/// One shard's part of SLOWLOG LEN: `[max-len, len]`.
fn slowlog_len(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(vec![Reply::Int(ctx.shard.config.slowlog_max_len as i64), Reply::Int(ctx.shard.slowlog.len() as i64)])
}

/// The merged log's length: the shards' entries, at most slowlog-max-len.
fn merge_len(parts: Vec<Reply>) -> Reply {
    let (mut max, mut sum) = (0i64, 0i64);
    for p in parts {
        if let Reply::Array(v) = p {
            if let [Reply::Int(m), Reply::Int(n)] = v[..] {
                max = m;
                sum += n;
            }
        }
    }
    Reply::Int(sum.min(max))
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    ctx.shard.slowlog.entries.clear();
    Reply::Ok
}

const CATS: &[&str] = &["@admin", "@slow", "@dangerous"];

/// The SLOWLOG commands.
pub const COMMANDS: &[Command] = &[
    keyless("slowlog", -2, CONTAINER, Route::Local(slowlog_container), &["@slow"], "A container for slow log commands."),
    keyless(
        "slowlog|get",
        -2,
        ADMIN | LOADING | STALE,
        Route::All(slowlog_get, Merge::Custom(merge_get)),
        CATS,
        "Returns the slow log's entries, newest first, from every shard.",
    ),
    keyless(
        "slowlog|len",
        2,
        ADMIN | LOADING | STALE,
        Route::All(slowlog_len, Merge::Custom(merge_len)),
        CATS,
        "Returns the number of entries in the slow log.",
    ),
    keyless(
        "slowlog|reset",
        2,
        ADMIN | LOADING | STALE,
        Route::All(slowlog_reset, Merge::FirstError),
        CATS,
        "Clears all entries from the slow log.",
    ),
    keyless(
        "slowlog|help",
        2,
        LOADING | STALE,
        Route::Local(slowlog_help),
        &["@slow"],
        "Show helpful text about the different subcommands.",
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_cut_as_redis_cuts_them() {
        let long = vec![b'x'; 200];
        let cut = cut_args(&[b"set", b"k", &long], false);
        assert_eq!(cut[2].len(), 128 + "... (72 more bytes)".len());
        assert!(cut[2].ends_with(b"... (72 more bytes)"));
        let many: Vec<Vec<u8>> = (0..37).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let cut = cut_args(&refs, false);
        assert_eq!(cut.len(), 32);
        assert_eq!(cut[30], b"30");
        assert_eq!(cut[31], b"... (6 more arguments)");
        assert_eq!(cut_args(&[b"auth", b"pw"], true)[1], b"(redacted)");
    }

    #[test]
    fn merge_keeps_the_newest() {
        let e = |id| Reply::Array(vec![Reply::Int(id)]);
        let parts = vec![
            Reply::Array(vec![Reply::Int(2), Reply::Array(vec![e(5), e(1)])]),
            Reply::Array(vec![Reply::Int(2), Reply::Array(vec![e(4), e(3)])]),
        ];
        let Reply::Array(got) = merge_get(parts) else { panic!() };
        assert_eq!(got.iter().map(entry_id).collect::<Vec<_>>(), vec![5, 4]);
    }
}
