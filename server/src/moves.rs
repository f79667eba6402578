//! Commands that move data from a key on one shard to a key on another:
//! RENAME, RENAMENX, COPY, LMOVE, RPOPLPUSH and SMOVE.
//!
//! Each runs as a cross-shard transaction of the [`crate::coordinator`]
//! with two participants, the source's shard and the destination's:
//!
//! 1. Both keys are locked. While they are, a *check* on each shard reads
//!    what the move needs: the source's element, membership or whole value
//!    (serialized with the checkpoint codec), and whether the destination
//!    holds a type the command may write into (or exists, for RENAMENX and
//!    COPY without REPLACE).
//! 2. The coordinator decides from the two answers, in the order Redis
//!    checks them, and writes each shard's half: pop / remove / delete on
//!    the source, push / add / store on the destination.
//! 3. Each shard applies its half as one record tagged with the
//!    transaction, so a crash keeps both halves or neither; the keys stay
//!    locked until both are applied, so no command sees one without the
//!    other.
//!
//! Nothing here touches a shard's state except through the handlers below,
//! which run on the owning shard like any command.
//!
//! BLMOVE and BRPOPLPUSH try the move; when the source is empty the
//! connection waits on the source's shard for an element ([`wait_for_element`],
//! which pops nothing) and tries again, until the timeout.
//!
//! Inside MULTI/EXEC or a script whose keys span shards they run on the
//! transaction's copies of the keys ([`crate::gather::exec`],
//! [`crate::gather::script`]); the *STORE commands across shards are
//! [`crate::gather`]'s.
//! A time series with compaction rules stays on its shard (its rules name
//! keys of that shard).

use std::borrow::Cow;
use std::rc::Rc;

use strand_engine::codec::{Reader, Writer};
use strand_engine::keyspace::list::List;
use strand_engine::keyspace::set::Set;
use strand_engine::keyspace::{Op, Value};

use crate::command::lists::parse_side;
use crate::command::strings::{db8, write};
use crate::command::table::CmdId;
use crate::command::{err, typed, Command, Ctx, ShardFn};
use crate::coordinator::{self, Part, Participant};
use crate::dispatch::{OwnedArgs, RemoteCmd, Shard};
use crate::reply::Reply;
use crate::stats::Call;

/// The commands this module runs when their two keys live on different shards.
pub fn moves(name: &str) -> bool {
    matches!(name, "rename" | "renamenx" | "copy" | "lmove" | "rpoplpush" | "smove")
}

/// The blocking moves this module runs when their two keys live on different shards.
pub fn blocking_moves(name: &str) -> bool {
    matches!(name, "blmove" | "brpoplpush")
}

/// A blocking move's LMOVE (the move each try makes) and its timeout
/// (None: forever), or the error the same-shard form answers for its
/// arguments.
pub fn blocking_parts(cmd: &Command, args: &[&[u8]]) -> Result<(Vec<Vec<u8>>, Option<u64>), Reply> {
    let (from, to, timeout): (&[u8], &[u8], &[u8]) = match (cmd.name, args.len()) {
        ("blmove", 6) => {
            parse_side(args[3])?;
            parse_side(args[4])?;
            (args[3], args[4], args[5])
        }
        ("brpoplpush", 4) => (b"right", b"left", args[3]),
        _ => return Err(crate::command::arity_error(cmd.name)),
    };
    let timeout = crate::command::timeout_arg(timeout)?;
    Ok(([&b"lmove"[..], args[1], args[2], from, to].iter().map(|a| a.to_vec()).collect(), timeout))
}

/// Waits on the source's shard until the list `src` has an element, or
/// holds another type (the next try answers WRONGTYPE): OK; nil when
/// `timeout_ms` passes first. Dropping the future (the client went away)
/// ends the wait.
pub fn wait_for_element(
    shard: &Rc<Shard>,
    db: usize,
    caller: u64,
    src: &[u8],
    timeout_ms: Option<u64>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> {
    let to = shard.shared.slots.shard_of(src);
    crate::pops::wait_on(shard, to, crate::pops::Kind::List, b"", &[src.to_vec()], db, caller, timeout_ms)
}

/// What the coordinator needs to build one shard's commands.
struct Ask {
    id: CmdId,
    db: u8,
    caller: u64,
}

impl Ask {
    fn cmd(&self, handler: ShardFn, db: u8, args: &[&[u8]]) -> RemoteCmd {
        RemoteCmd { handler, call: Call::Part(self.id), db, caller: self.caller, args: OwnedArgs::new(args), blocking: false }
    }

    /// A participant that locks `key` of `db` on `shard` and runs `check` there.
    fn side(&self, shard: usize, db: u8, key: &[u8], check: Option<RemoteCmd>, denyoom: bool) -> Participant {
        Participant {
            shard,
            part: Part { keys: vec![(db, key.to_vec())], shared: false, watches: Vec::new(), denyoom, checks: check.into_iter().collect() },
            cmds: Vec::new(),
            writes: true,
        }
    }
}

/// Runs `cmd` (one of [`moves`]) whose source and destination live on different shards.
pub async fn run(shard: &Rc<Shard>, cmd: &Command, id: CmdId, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    let ask = Ask { id, db: db as u8, caller };
    let owner = |k: &[u8]| shard.shared.slots.shard_of(k);
    let m = match parse(cmd, ask.db, args) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let (src, dst) = (args[1], args[2]);
    let (a, b) = (owner(src), owner(dst));
    debug_assert_ne!(a, b, "a move within one shard runs there");
    let dst_db = match m {
        Move::Copy { db, .. } => db,
        _ => ask.db,
    };
    let (src_check, dst_check): (ShardFn, Option<ShardFn>) = match m {
        Move::Rename { nx } => (dump, nx.then_some(exists as ShardFn)),
        Move::Copy { replace, .. } => (dump, (!replace).then_some(exists as ShardFn)),
        Move::List { .. } => (list_end, Some(list_or_none as ShardFn)),
        Move::Member(_) => (set_member, Some(set_or_none as ShardFn)),
    };
    let src_args: Vec<&[u8]> = match m {
        Move::List { from_left, .. } => vec![args[0], src, if from_left { b"left" } else { b"right" }],
        Move::Member(_) => vec![args[0], src, args[3]],
        _ => vec![args[0], src],
    };
    let parts = vec![
        ask.side(a, ask.db, src, Some(ask.cmd(src_check, ask.db, &src_args)), false),
        ask.side(b, dst_db, dst, dst_check.map(|c| ask.cmd(c, dst_db, &[args[0], dst])), true),
    ];
    // Participants come back in shard order.
    let (si, di) = if a < b { (0, 1) } else { (1, 0) };
    let mut answer = Reply::Nil;
    let plan = |checks: &[Vec<Reply>], cmds: &mut [Vec<RemoteCmd>]| {
        let (found, there) = (checks[si].first(), checks[di].first());
        match decide(&m, found, there) {
            Decision::Answer(r) => {
                answer = r;
                false
            }
            Decision::Apply { answer: r, src: s, dst: d } => {
                let src_cmds = s.iter().map(|(h, a)| ask.cmd(*h, ask.db, &with_key(a, src)));
                cmds[si] = src_cmds.collect();
                cmds[di] = d.iter().map(|(h, a)| ask.cmd(*h, dst_db, &with_key(a, dst))).collect();
                answer = r;
                true
            }
        }
    };
    let outcome = coordinator::run_planned(shard, parts, plan).await;
    outcome.answer(answer, cmd.name)
}

/// The move `args` ask for; an arity or syntax error as Redis answers it.
fn parse(cmd: &Command, db: u8, args: &[&[u8]]) -> Result<Move, Reply> {
    match cmd.name {
        "rename" | "renamenx" if args.len() == 3 => Ok(Move::Rename { nx: cmd.name == "renamenx" }),
        "copy" if args.len() >= 3 => crate::command::keys::copy_options(db, &args[3..]).map(|(db, replace)| Move::Copy { db, replace }),
        "lmove" if args.len() == 5 => Ok(Move::List { from_left: parse_side(args[3])?, to_left: parse_side(args[4])? }),
        "rpoplpush" if args.len() == 3 => Ok(Move::List { from_left: false, to_left: true }),
        "smove" if args.len() == 4 => Ok(Move::Member(args[3].to_vec())),
        _ => Err(crate::command::arity_error(cmd.name)),
    }
}

/// A command's arguments with the key put after its name: `[name, key, rest...]`.
fn with_key<'a>(a: &'a [Vec<u8>], key: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = Vec::with_capacity(a.len() + 1);
    out.push(&a[0]);
    out.push(key);
    out.extend(a[1..].iter().map(Vec::as_slice));
    out
}

/// A parsed move.
enum Move {
    Rename {
        nx: bool,
    },
    Copy {
        db: u8,
        replace: bool,
    },
    List {
        from_left: bool,
        to_left: bool,
    },
    /// SMOVE's member.
    Member(Vec<u8>),
}

/// Commands for one shard: a handler and its arguments with the key left
/// out (the first argument names the command, as keyspace events see it).
type Half = Vec<(ShardFn, Vec<Vec<u8>>)>;

/// What the two checks lead to.
enum Decision {
    /// Nothing to write: the command answers this.
    Answer(Reply),
    /// Write the halves, then answer this (unless a half fails).
    Apply { answer: Reply, src: Half, dst: Half },
}

/// One half's command: `handler` with `args` (the key goes after the first).
fn half(handler: ShardFn, args: &[&[u8]]) -> Half {
    vec![(handler, args.iter().map(|a| a.to_vec()).collect())]
}

/// The coordinator's decision from the source's and the destination's
/// check replies, in the order the same-shard forms check (Redis's order):
/// the source's type, then whether it has anything to move, then the
/// destination.
fn decide(m: &Move, found: Option<&Reply>, there: Option<&Reply>) -> Decision {
    use crate::command::{lists, sets};
    let odd = || Decision::Answer(Reply::error("ERR a shard answered the check of a cross-shard move oddly"));
    match found {
        Some(e) if e.is_error() => return Decision::Answer(e.clone()),
        Some(Reply::Nil) => {
            return Decision::Answer(match m {
                Move::Rename { .. } => Reply::error(err::NO_SUCH_KEY),
                Move::Copy { .. } | Move::Member(_) => Reply::Int(0),
                Move::List { .. } => Reply::Nil,
            })
        }
        Some(Reply::Int(0)) if matches!(m, Move::Member(_)) => return Decision::Answer(Reply::Int(0)),
        None => return odd(),
        _ => {}
    }
    match there {
        Some(e) if e.is_error() => return Decision::Answer(e.clone()),
        Some(Reply::Int(n)) if *n > 0 => return Decision::Answer(Reply::Int(0)),
        _ => {}
    }
    let value = |v: &[Reply]| match v {
        [Reply::Int(expire), Reply::Bulk(value)] => Some(half(put, &[b"put", expire.to_string().as_bytes(), value])),
        _ => None,
    };
    match (m, found) {
        (Move::Rename { nx }, Some(Reply::Array(v))) => match value(v) {
            Some(dst) => Decision::Apply { answer: if *nx { Reply::Int(1) } else { Reply::Ok }, src: half(del, &[b"del"]), dst },
            None => odd(),
        },
        (Move::Copy { .. }, Some(Reply::Array(v))) => match value(v) {
            Some(dst) => Decision::Apply { answer: Reply::Int(1), src: Vec::new(), dst },
            None => odd(),
        },
        (Move::List { from_left, to_left }, Some(Reply::Bulk(elem))) => Decision::Apply {
            answer: Reply::Bulk(elem.clone()),
            src: if *from_left { half(lists::lpop, &[b"lpop"]) } else { half(lists::rpop, &[b"rpop"]) },
            dst: if *to_left { half(lists::lpush, &[b"lpush", elem]) } else { half(lists::rpush, &[b"rpush", elem]) },
        },
        (Move::Member(member), Some(Reply::Int(1))) => {
            Decision::Apply { answer: Reply::Int(1), src: half(sets::srem, &[b"srem", member]), dst: half(sets::sadd, &[b"sadd", member]) }
        }
        _ => odd(),
    }
}

// ---------------------------------------------------------------------------
// The halves: handlers that run on the owning shard
// ---------------------------------------------------------------------------

/// Check: `[_, key]` → `[expire_ms, value]` serialized, or nil when the key
/// is missing; a time series with compaction rules does not move.
pub(crate) fn dump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if let Some(Value::Series(s)) = ctx.shard.ks.peek(ctx.db, args[1], ctx.now).map(|e| &e.value) {
        if !s.rules().is_empty() || s.source().is_some() {
            return Reply::error(
                "CROSSSLOT a time series with compaction rules stays on its shard: use a {hash tag} to keep the keys together",
            );
        }
    }
    read_whole(ctx, args)
}

/// Check: `[_, key]` → `[expire_ms, value]` serialized, or nil when the key is missing.
pub(crate) fn read_whole(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    // Cold values are read back here: not every command's key positions find the key in `[_, key]`.
    if let Err(e) = ctx.shard.ks.make_resident(ctx.db, args[1]) {
        let key = String::from_utf8_lossy(args[1]);
        return Reply::error(format!("ERR the value of key '{key}' could not be read from the cold tier: {e}"));
    }
    let Some(e) = ctx.shard.ks.peek(ctx.db, args[1], ctx.now) else { return Reply::Nil };
    let mut bytes = vec![0; e.value.encoded_len()];
    e.value.encode(&mut Writer::new(&mut bytes));
    Reply::Array(vec![Reply::Int(e.expire_ms as i64), Reply::Bulk(bytes)])
}

/// Check: `[_, key]` → 1 if the key exists, else 0.
pub(crate) fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    Reply::Int(ctx.shard.ks.contains(ctx.db, args[1], ctx.now) as i64)
}

/// Apply: `[_, key, expire_ms, value]` replaces the key with the serialized value.
pub(crate) fn put(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let expire_ms = std::str::from_utf8(args[2]).ok().and_then(|s| s.parse::<u64>().ok());
    let mut r = Reader::new(args[3]);
    let value = match (expire_ms, Value::decode(&mut r).and_then(|v| r.finish().map(|()| v))) {
        (Some(expire_ms), Ok(value)) => (expire_ms, value),
        (_, Err(e)) => return Reply::error(format!("ERR a moved value does not decode: {e}")),
        (None, _) => return Reply::error("ERR a moved value came without its expiry"),
    };
    let (expire_ms, value) = value;
    if let Err(e) = write(ctx, Op::Store { db: db8(ctx), key: args[1], value: Cow::Owned(value), expire_ms }) {
        return e;
    }
    // A queue's next deadline (a lease, a delay) and a stream's retention
    // go to this shard's timers, as the commands that write them note them.
    let (next, retained) = match ctx.shard.ks.peek(ctx.db, args[1], ctx.now).map(|e| &e.value) {
        Some(Value::Queue(q)) => (q.next_event(), false),
        Some(Value::Stream(s)) => (None, s.retention.is_set()),
        _ => (None, false),
    };
    let db = db8(ctx);
    if let Some(t) = next {
        ctx.shard.queue_timers.note(t, db, args[1]);
    }
    if retained {
        ctx.shard.stream_retention.note(db, args[1]);
    }
    Reply::Ok
}

/// Apply: `[_, key]` deletes the key.
pub(crate) fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    match write(ctx, Op::Del { db: db8(ctx), key: args[1] }) {
        Ok(()) => Reply::Int(1),
        Err(e) => e,
    }
}

/// [`put`] without keyspace notifications (a cross-shard script publishes the ones its commands raised).
pub(crate) fn put_quietly(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let cmd = ctx.cmd.take();
    let reply = put(ctx, args);
    ctx.cmd = cmd;
    reply
}

/// [`del`] without keyspace notifications.
pub(crate) fn del_quietly(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let cmd = ctx.cmd.take();
    let reply = del(ctx, args);
    ctx.cmd = cmd;
    reply
}

/// Check: `[_, key, left|right]` → the element LMOVE would pop, nil for
/// none, or WRONGTYPE.
fn list_end(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    match typed::peek::<List>(ctx, args[1]) {
        Err(e) => e,
        Ok(l) => {
            let end = l.and_then(|l| if args[2] == b"left" { l.front() } else { l.back() });
            end.map_or(Reply::Nil, |e| Reply::Bulk(e.to_vec()))
        }
    }
}

/// Check: `[_, key]` → OK when the key is a list or missing, else WRONGTYPE.
fn list_or_none(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    typed::peek::<List>(ctx, args[1]).map_or_else(|e| e, |_| Reply::Ok)
}

/// Check: `[_, key, member]` → nil when the set is missing, 1 or 0 for
/// membership, or WRONGTYPE.
fn set_member(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    match typed::peek::<Set>(ctx, args[1]) {
        Err(e) => e,
        Ok(None) => Reply::Nil,
        Ok(Some(s)) => Reply::Int(s.get(args[2]).is_some() as i64),
    }
}

/// Check: `[_, key]` → OK when the key is a set or missing, else WRONGTYPE.
fn set_or_none(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    typed::peek::<Set>(ctx, args[1]).map_or_else(|e| e, |_| Reply::Ok)
}
