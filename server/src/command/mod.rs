//! The command table: each command's name, arity, flags, key positions and route.
//!
//! A command travels: the connection looks its name up here, checks the
//! arity, then [`crate::dispatch`] sends it where its [`Route`] says: to the
//! shard that owns its key, split over the shards that own its keys, to every
//! shard, or to the connection itself. Handlers of shard routes are plain
//! functions over a [`Ctx`], so the same handler runs locally or on another
//! shard after a hop over the bus. One file per family of commands:
//! [`strings`], [`keys`], [`hashes`], [`lists`], [`sets`], [`zsets`], [`server`],
//! [`streams`], [`stream_groups`], [`queues`], [`connection`], [`acl`], [`transactions`], [`pubsub`], [`scripting`], [`slowlog`], [`latency`], [`series`], [`series_multi`], [`search`], [`search_query`], [`search_aggregate`], [`suggest`].

pub mod acl;
pub mod connection;
pub mod debug;
pub mod glob;
pub mod hashes;
pub mod keys;
pub mod latency;
pub mod lists;
pub mod pubsub;
pub mod queues;
pub mod scripting;
pub mod search;
pub mod search_aggregate;
pub mod search_query;
pub mod series;
pub mod series_multi;
pub mod server;
pub mod sets;
pub mod slowlog;
pub mod stream_config;
pub mod stream_groups;
pub mod stream_retention;
pub mod streams;
pub mod strings;
pub mod suggest;
pub mod table;
pub mod transactions;
pub mod typed;
pub mod zsets;

use crate::reply::Reply;
use crate::shard::ShardState;

pub use table::lookup;

/// What a handler on a shard sees: the shard's state, the database the
/// connection selected, and the time the command runs at.
pub struct Ctx<'a> {
    /// The shard that owns the keys.
    pub shard: &'a mut ShardState,
    /// `SELECT`ed database.
    pub db: usize,
    /// Unix milliseconds for this command (monotonic per shard).
    pub now: u64,
    /// Id of the client that sent the command.
    pub caller: u64,
    /// Whether the command may block (not inside MULTI or a script).
    pub may_block: bool,
    /// Set by [`Ctx::block`]: the command found nothing and waits on these keys.
    pub blocked: Option<Block>,
    /// The command's name in lower case, when keyspace notifications are on.
    pub cmd: Option<String>,
}

/// What a blocking command waits for.
#[derive(Debug, Clone)]
pub struct Block {
    /// The keys whose change wakes it (it then runs again, from the start).
    pub keys: Vec<Vec<u8>>,
    /// Unix ms when it gives up, None to wait forever.
    pub deadline_ms: Option<u64>,
    /// The arguments to run it again with, when they differ from the
    /// request's (XREAD's `$` becomes the last ID at the time it blocked).
    pub rerun: Option<Vec<Vec<u8>>>,
}

impl Ctx<'_> {
    /// Called by a blocking command (BLPOP, BZPOPMIN ...) that found nothing
    /// to serve: returns `timeout_reply`, which is also its answer where it
    /// may not block (MULTI, scripts). Where it may, the dispatcher parks the
    /// command on `keys` and runs the handler again, with the same arguments,
    /// each time one of them is written, until it answers something else or
    /// `timeout_ms` (None: forever) passes; waiters on a key are served
    /// first-blocked, first-served.
    pub fn block(&mut self, keys: &[&[u8]], timeout_ms: Option<u64>, timeout_reply: Reply) -> Reply {
        if self.may_block && self.blocked.is_none() {
            let deadline_ms = timeout_ms.map(|t| self.now.saturating_add(t));
            self.blocked = Some(Block { keys: keys.iter().map(|k| k.to_vec()).collect(), deadline_ms, rerun: None });
        }
        timeout_reply
    }

    /// [`Ctx::block`], running again with `rerun` as the arguments.
    pub fn block_with(&mut self, keys: &[&[u8]], timeout_ms: Option<u64>, timeout_reply: Reply, rerun: Vec<Vec<u8>>) -> Reply {
        let reply = self.block(keys, timeout_ms, timeout_reply);
        if let Some(b) = self.blocked.as_mut() {
            b.rerun = Some(rerun);
        }
        reply
    }
}

/// Redis's timeout argument of blocking commands: seconds as a float
/// (BLPOP, BZPOPMIN ...), 0 for forever. Returns milliseconds, None for forever.
pub fn timeout_arg(arg: &[u8]) -> Result<Option<u64>, Reply> {
    let secs = strings::parse_f64(arg).ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    // Redis 7.0 takes ceil(seconds * 1000) as a C long long: a value beyond
    // its range becomes LLONG_MIN there (so "negative"), and -0.0001 rounds
    // up to 0, which waits forever.
    let ms = (secs * 1000.0).ceil();
    if !(0.0..9.223_372_036_854_776e18).contains(&ms) {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok((ms > 0.0).then_some(ms as u64))
}

/// A timeout in milliseconds (XREAD and QPOP BLOCK): a non-negative
/// integer, 0 for forever. Returns milliseconds, None for forever.
pub fn timeout_ms_arg(arg: &[u8]) -> Result<Option<u64>, Reply> {
    let ms = strings::parse_i64(arg).ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok((ms > 0).then_some(ms as u64))
}

/// A handler that runs on a shard. `args[0]` is the command name.
pub type ShardFn = fn(&mut Ctx<'_>, &[&[u8]]) -> Reply;

/// How the parts of a command run on several shards are joined.
#[derive(Clone, Copy, Debug)]
pub enum Merge {
    /// Each part answers an array with one element per key it was given;
    /// the result puts them back in the order of the request (MGET).
    KeyedArray,
    /// Integers are added (DEL, EXISTS, TOUCH, UNLINK, DBSIZE).
    SumInt,
    /// The first error, else the first part's reply (FLUSHALL, SWAPDB).
    FirstError,
    /// Arrays are concatenated (KEYS).
    ConcatArray,
    /// Any non-nil part, picked at random (RANDOMKEY).
    AnyNonNil,
    /// A custom join of the parts in shard order.
    Custom(fn(Vec<Reply>) -> Reply),
}

/// Where a command runs.
#[derive(Clone, Copy)]
pub enum Route {
    /// On the connection's shard, with the connection's state (PING, SELECT, HELLO, AUTH, CLIENT SETNAME ...).
    Conn(crate::conn::ConnFn),
    /// On the shard that owns the key at `first_key`; commands with several
    /// keys need them all on one shard (RENAME, SMOVE ...), else CROSSSLOT;
    /// MSET and MSETNX over several shards go to the [`crate::coordinator`] instead.
    Key(ShardFn),
    /// Keys are split by owner (key positions from `first_key`, `step`); each
    /// part runs with the subset of its keys (and the values that follow each key
    /// when step > 1), and the parts are merged.
    Split(ShardFn, Merge),
    /// On every shard, merged.
    All(ShardFn, Merge),
    /// On the shard named by the low 8 bits of the cursor in `args[1]` (SCAN).
    Cursor(ShardFn),
    /// No keys and no connection state: runs on the connection's shard (TIME, ECHO ...).
    Local(ShardFn),
    /// Run by the connection itself, which waits for other shards in between (EXEC, WATCH, UNWATCH).
    Async(AsyncCmd),
}

/// The commands a connection runs asynchronously, outside a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncCmd {
    /// EXEC.
    Exec,
    /// WATCH.
    Watch,
    /// UNWATCH.
    Unwatch,
    /// SAVE: a checkpoint of every shard, waited for.
    Save,
    /// BGSAVE: a checkpoint of every shard, started.
    BgSave,
    /// FT.SEARCH: two rounds over every shard.
    Search,
    /// FT.AGGREGATE: every shard's matching rows, the pipeline run by the connection.
    Aggregate,
}

/// Command flags, as COMMAND INFO reports them.
pub mod flags {
    /// Writes data.
    pub const WRITE: u32 = 1;
    /// Only reads data.
    pub const READONLY: u32 = 1 << 1;
    /// May allocate memory.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 4;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 5;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Sub-command container (CLIENT, CONFIG ...).
    pub const CONTAINER: u32 = 1 << 9;
    /// May block the connection (BLPOP ...): runs as a batch of its own.
    pub const BLOCKING: u32 = 1 << 10;
    /// Its keys are not where `first_key`/`last_key`/`step` say: a
    /// `numkeys` argument counts them ([`super::NUMKEYS`]) or they follow a
    /// `STREAMS` keyword ([`super::STREAMS_KEYWORD`]).
    pub const MOVABLEKEYS: u32 = 1 << 11;

    /// The names COMMAND INFO prints, in order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (BLOCKING, "blocking"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// One entry of the command table.
pub struct Command {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments (including the name), -N at least N.
    pub arity: i32,
    /// [`flags`].
    pub flags: u32,
    /// Position of the first key (0: no keys).
    pub first_key: i32,
    /// Position of the last key (-1: the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Where it runs.
    pub route: Route,
    /// ACL categories, for COMMAND INFO.
    pub categories: &'static [&'static str],
    /// One-line summary for COMMAND DOCS.
    pub summary: &'static str,
}

impl Command {
    /// Whether `n` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 {
            n == self.arity as usize
        } else {
            n >= (-self.arity) as usize
        }
    }

    /// Positions of the keys in a request: from `first_key`/`last_key`/`step`,
    /// or, for the commands flagged [`flags::MOVABLEKEYS`], the `numkeys`
    /// arguments after a count (EVAL, ZUNIONSTORE, LMPOP ...) or the first
    /// half of what follows `STREAMS` (XREAD). A numkeys that is not a count
    /// or exceeds the arguments gives no keys; the handler then answers its
    /// own error. Every request asks this, so the common case allocates nothing.
    pub fn keys_of(&self, args: &[&[u8]]) -> KeyPositions {
        if self.flags & flags::MOVABLEKEYS == 0 {
            return KeyPositions::Fixed(self.key_positions(args.len()));
        }
        KeyPositions::Listed(self.movable_keys(args).into_iter())
    }

    /// [`Command::keys_of`] for a command flagged [`flags::MOVABLEKEYS`].
    fn movable_keys(&self, args: &[&[u8]]) -> Vec<usize> {
        if let Some(&(_, from)) = STREAMS_KEYWORD.iter().find(|(name, _)| *name == self.name) {
            return streams_keys(args, from);
        }
        let Some(&(_, at, dest)) = NUMKEYS.iter().find(|(name, _, _)| *name == self.name) else {
            return Vec::new();
        };
        let mut keys: Vec<usize> = dest.into_iter().filter(|&d| d < args.len()).collect();
        let n = args.get(at).and_then(|a| strings::parse_i64(a)).filter(|&n| n >= 0).map_or(0, |n| n as usize);
        let first = at + 1;
        if first + n <= args.len() {
            keys.extend(first..first + n);
        }
        keys
    }

    /// Positions of the keys in `args` (`args.len()` = n), from `first_key`/`last_key`/`step` only.
    pub fn key_positions(&self, n: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 { n as i64 + self.last_key as i64 } else { self.last_key as i64 };
        let step = self.step.max(1) as usize;
        let end = if first == 0 { 0 } else { (last.max(0) as usize + 1).min(n) };
        (first..end).step_by(step)
    }
}

/// The key positions [`Command::keys_of`] finds, in request order.
pub enum KeyPositions {
    /// From the table's `first_key`/`last_key`/`step`.
    Fixed(std::iter::StepBy<std::ops::Range<usize>>),
    /// Worked out from the arguments (a movable-keys command).
    Listed(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Fixed(r) => r.next(),
            KeyPositions::Listed(v) => v.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            KeyPositions::Fixed(r) => r.size_hint(),
            KeyPositions::Listed(v) => v.size_hint(),
        }
    }
}

/// Commands whose keys follow a `STREAMS` keyword, searched from a
/// position: the first half of the arguments after it (XREAD, XREADGROUP).
pub const STREAMS_KEYWORD: &[(&str, usize)] = &[("xread", 1), ("xreadgroup", 4)];

/// Key positions of a `... STREAMS key... id...` request; none when the
/// keyword is missing or the rest does not split in two (the handler answers).
fn streams_keys(args: &[&[u8]], from: usize) -> Vec<usize> {
    let Some(at) = args.iter().skip(from).position(|a| a.eq_ignore_ascii_case(b"streams")).map(|p| p + from) else {
        return Vec::new();
    };
    let rest = args.len() - at - 1;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Vec::new();
    }
    (at + 1..at + 1 + rest / 2).collect()
}

/// Commands whose keys are counted by an argument: (name, position of that
/// argument, position of a key before it: the destination of the *STORE forms).
pub const NUMKEYS: &[(&str, usize, Option<usize>)] = &[
    ("eval", 2, None),
    ("evalsha", 2, None),
    ("eval_ro", 2, None),
    ("evalsha_ro", 2, None),
    ("fcall", 2, None),
    ("fcall_ro", 2, None),
    ("sintercard", 1, None),
    ("zunionstore", 2, Some(1)),
    ("zinterstore", 2, Some(1)),
    ("zdiffstore", 2, Some(1)),
    ("zunion", 1, None),
    ("zinter", 1, None),
    ("zdiff", 1, None),
    ("zintercard", 1, None),
    ("lmpop", 1, None),
    ("zmpop", 1, None),
    ("blmpop", 2, None),
    ("bzmpop", 2, None),
    ("qmpop", 1, None),
];

/// Table entry of a command whose keys sit at `keys` = (first, last, step),
/// routed to the shard that owns them.
pub(crate) const fn entry(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    handler: ShardFn,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    Command { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, route: Route::Key(handler), categories, summary }
}

/// Key positions of a command with one key, right after its name.
pub(crate) const ONE: (i32, i32, i32) = (1, 1, 1);

/// Table entry of a command with its key at position 1 only.
pub(crate) const fn one_key(
    name: &'static str,
    arity: i32,
    flags: u32,
    handler: ShardFn,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    entry(name, arity, flags, ONE, handler, categories, summary)
}

/// Table entry of a command without keys.
pub(crate) const fn keyless(
    name: &'static str,
    arity: i32,
    flags: u32,
    route: Route,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    Command { name, arity, flags, first_key: 0, last_key: 0, step: 0, route, categories, summary }
}

/// Redis's reply to a wrong number of arguments.
pub fn arity_error(name: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Redis's standard errors.
pub mod err {
    /// Operation against a key holding the wrong kind of value.
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    /// Syntax error.
    pub const SYNTAX: &str = "ERR syntax error";
    /// Not an integer.
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    /// Not a float.
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    /// Increment overflow.
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    /// No such key.
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    /// DB index out of range.
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    /// Keys on different shards.
    pub const CROSSSLOT_TX: &str =
        "CROSSSLOT Keys of a command in the transaction don't hash to the same shard, and the transaction also holds a command that cannot run on copies of its keys (TS.CREATERULE, a command without keys); use a {hash tag} to keep them together";
    /// A command whose keys live on several shards and that cannot be split or coordinated.
    pub const CROSSSLOT: &str =
        "CROSSSLOT Keys in request don't hash to the same shard; use a {hash tag} to keep them together (across shards strand runs MSET, MSETNX, RENAME, COPY, LMOVE, SMOVE, BLPOP and the other pops, set and sorted-set algebra, scripts, multi-key reads and deletes, and MULTI/EXEC)";
}

#[cfg(test)]
mod tests {
    use super::table::entries;
    use super::*;

    /// The flag that lets [`Command::keys_of`] skip the tables is set on exactly the commands in them.
    #[test]
    fn movable_keys_flag_matches_the_key_tables() {
        for c in entries() {
            let listed = NUMKEYS.iter().any(|(n, _, _)| *n == c.name) || STREAMS_KEYWORD.iter().any(|(n, _)| *n == c.name);
            assert_eq!(c.flags & flags::MOVABLEKEYS != 0, listed, "{}", c.name);
        }
    }

    #[test]
    fn keys_of_fixed_and_movable() {
        let get = table::lookup(&[b"get"]).expect("get");
        assert_eq!(get.keys_of(&[b"get", b"k"]).collect::<Vec<_>>(), [1]);
        let mset = table::lookup(&[b"mset"]).expect("mset");
        assert_eq!(mset.keys_of(&[b"mset", b"a", b"1", b"b", b"2"]).collect::<Vec<_>>(), [1, 3]);
        let ping = table::lookup(&[b"ping"]).expect("ping");
        assert_eq!(ping.keys_of(&[b"ping"]).count(), 0);
        let zus = table::lookup(&[b"zunionstore"]).expect("zunionstore");
        assert_eq!(zus.keys_of(&[b"zunionstore", b"d", b"2", b"a", b"b", b"weights"]).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(zus.keys_of(&[b"zunionstore", b"d", b"9", b"a"]).collect::<Vec<_>>(), [1]);
        let xread = table::lookup(&[b"xread"]).expect("xread");
        assert_eq!(xread.keys_of(&[b"xread", b"count", b"1", b"streams", b"a", b"b", b"0", b"0"]).collect::<Vec<_>>(), [4, 5]);
    }
}
