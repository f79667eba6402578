//! Pub/sub commands: <https://redis.io/docs/interactions/pubsub/>.
//!
//! SUBSCRIBE and kin change the connection (its subscriptions live on its
//! own shard, see [`crate::pubsub`]); PUBLISH and PUBSUB run on every shard
//! and merge. A RESP2 connection with subscriptions may only (un)subscribe,
//! PING, QUIT and RESET, as in Redis; RESP3 connections may run anything,
//! messages arrive as push replies in between.

use futures::channel::mpsc;

use super::flags::*;
use super::{Command, Ctx, Merge, Route};
use crate::conn::{ConnCtx, ConnState};
use crate::reply::Reply;

/// A connection's subscriptions and its mailbox.
#[derive(Default)]
pub struct Subscriptions {
    /// Channels, in the order subscribed.
    pub channels: Vec<Vec<u8>>,
    /// Patterns, in the order subscribed.
    pub patterns: Vec<Vec<u8>>,
    /// Where its shard delivers messages, and where the connection reads them.
    pub mailbox: Option<(mpsc::UnboundedSender<Reply>, mpsc::UnboundedReceiver<Reply>)>,
}

impl Subscriptions {
    /// Channels and patterns together (what (un)subscribe replies count).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

fn ack(kind: &'static str, name: Option<&[u8]>, count: usize) -> Reply {
    Reply::Push(vec![Reply::bulk(kind), Reply::opt_bulk(name), Reply::Int(count as i64)])
}

fn subscribe_generic(c: &mut ConnCtx<'_>, args: &[&[u8]], pattern: bool) -> Reply {
    let id = c.conn.id;
    let subs = &mut c.conn.subs;
    let tx = subs.mailbox.get_or_insert_with(mpsc::unbounded).0.clone();
    let mailbox = crate::pubsub::Mailbox { tx, info: c.conn.info.clone() };
    let mut replies = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        let list = if pattern { &mut subs.patterns } else { &mut subs.channels };
        if !list.iter().any(|n| n == name) {
            list.push(name.to_vec());
            c.shard.state.borrow_mut().pubsub.subscribe(pattern, name, id, &mailbox);
        }
        replies.push(ack(if pattern { "psubscribe" } else { "subscribe" }, Some(name), subs.count()));
    }
    c.conn.info.borrow_mut().subscribed = true;
    Reply::Several(replies)
}

fn unsubscribe_generic(c: &mut ConnCtx<'_>, args: &[&[u8]], pattern: bool) -> Reply {
    let kind = if pattern { "punsubscribe" } else { "unsubscribe" };
    let id = c.conn.id;
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args[1..].iter().map(|a| a.to_vec()).collect()
    } else if pattern {
        c.conn.subs.patterns.clone()
    } else {
        c.conn.subs.channels.clone()
    };
    if names.is_empty() {
        return ack(kind, None, c.conn.subs.count());
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        let subs = &mut c.conn.subs;
        let list = if pattern { &mut subs.patterns } else { &mut subs.channels };
        if let Some(i) = list.iter().position(|n| *n == name) {
            list.remove(i);
            c.shard.state.borrow_mut().pubsub.unsubscribe(pattern, &name, id);
        }
        replies.push(ack(kind, Some(&name), subs.count()));
    }
    c.conn.info.borrow_mut().subscribed = c.conn.subs.count() > 0;
    Reply::Several(replies)
}

/// Drops every subscription of a connection (RESET, close).
pub fn unsubscribe_all(shard: &crate::dispatch::Shard, st: &mut ConnState) {
    let mut ps = shard.state.borrow_mut();
    for ch in st.subs.channels.drain(..) {
        ps.pubsub.unsubscribe(false, &ch, st.id);
    }
    for p in st.subs.patterns.drain(..) {
        ps.pubsub.unsubscribe(true, &p, st.id);
    }
    st.subs.mailbox = None;
    let mut info = st.info.borrow_mut();
    info.subscribed = false;
    // What waited in the mailbox is gone with it.
    info.omem = 0;
    info.soft_since_ms = None;
}

/// [SUBSCRIBE](https://redis.io/commands/subscribe/).
fn subscribe(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    subscribe_generic(c, args, false)
}

/// [PSUBSCRIBE](https://redis.io/commands/psubscribe/).
fn psubscribe(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    subscribe_generic(c, args, true)
}

/// [UNSUBSCRIBE](https://redis.io/commands/unsubscribe/).
fn unsubscribe(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    unsubscribe_generic(c, args, false)
}

/// [PUNSUBSCRIBE](https://redis.io/commands/punsubscribe/).
fn punsubscribe(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    unsubscribe_generic(c, args, true)
}

/// [PUBLISH](https://redis.io/commands/publish/): this shard's part; the parts' counts are summed.
fn publish(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let limits = &ctx.shard.config.client_output_buffer_limit;
    Reply::Int(ctx.shard.pubsub.publish(args[1], args[2], limits) as i64)
}

/// PUBSUB CHANNELS: this shard's channels; the merge removes duplicates.
fn pubsub_channels(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if args.len() > 3 {
        return Reply::error("ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.");
    }
    Reply::Array(ctx.shard.pubsub.channels(args.get(2).copied()).into_iter().map(Reply::Bulk).collect())
}

fn union(parts: Vec<Reply>) -> Reply {
    let mut all: Vec<Reply> = Vec::new();
    for p in parts {
        if let Reply::Array(items) = p {
            for i in items {
                if !all.contains(&i) {
                    all.push(i);
                }
            }
        }
    }
    Reply::Array(all)
}

/// PUBSUB NUMSUB: this shard's counts; the merge adds them per channel.
fn pubsub_numsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let mut out = Vec::new();
    for ch in &args[2..] {
        out.push(Reply::bulk(ch));
        out.push(Reply::Int(ctx.shard.pubsub.numsub(ch) as i64));
    }
    Reply::Array(out)
}

fn sum_pairs(parts: Vec<Reply>) -> Reply {
    let mut out: Vec<Reply> = Vec::new();
    for p in parts {
        let Reply::Array(items) = p else { continue };
        if out.is_empty() {
            out = items;
            continue;
        }
        for (i, item) in items.into_iter().enumerate() {
            if let (Some(Reply::Int(total)), Reply::Int(n)) = (out.get_mut(i), item) {
                *total += n;
            }
        }
    }
    // A flat array in RESP3 too, as Redis 7.0 answers.
    Reply::Array(out)
}

/// PUBSUB NUMPAT: this shard's patterns; the merge counts distinct ones.
fn pubsub_numpat(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(ctx.shard.pubsub.patterns().into_iter().map(Reply::Bulk).collect())
}

fn count_distinct(parts: Vec<Reply>) -> Reply {
    match union(parts) {
        Reply::Array(v) => Reply::Int(v.len() as i64),
        other => other,
    }
}

fn pubsub_container(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    Reply::error(format!("ERR unknown subcommand '{}'. Try PUBSUB HELP.", String::from_utf8_lossy(args[1])))
}

/// A keyless entry of this family's categories.
const fn cmd(name: &'static str, arity: i32, flags: u32, route: Route, summary: &'static str) -> Command {
    super::keyless(name, arity, flags, route, CATEGORIES, summary)
}

const CATEGORIES: &[&str] = &["@pubsub", "@slow"];

/// The pub/sub commands.
pub const COMMANDS: &[Command] = &[
    cmd("subscribe", -2, NOSCRIPT | LOADING | STALE, Route::Conn(subscribe), "Listens for messages published to channels."),
    cmd(
        "psubscribe",
        -2,
        NOSCRIPT | LOADING | STALE,
        Route::Conn(psubscribe),
        "Listens for messages published to channels that match patterns.",
    ),
    cmd("unsubscribe", -1, NOSCRIPT | LOADING | STALE, Route::Conn(unsubscribe), "Stops listening to messages posted to channels."),
    cmd(
        "punsubscribe",
        -1,
        NOSCRIPT | LOADING | STALE,
        Route::Conn(punsubscribe),
        "Stops listening to messages published to channels that match patterns.",
    ),
    cmd("publish", 3, LOADING | STALE | FAST, Route::All(publish, Merge::SumInt), "Posts a message to a channel."),
    cmd("pubsub", -2, CONTAINER, Route::Local(pubsub_container), "A container for Pub/Sub commands."),
    cmd("pubsub|channels", -2, LOADING | STALE, Route::All(pubsub_channels, Merge::Custom(union)), "Returns the active channels."),
    cmd(
        "pubsub|numsub",
        -2,
        LOADING | STALE,
        Route::All(pubsub_numsub, Merge::Custom(sum_pairs)),
        "Returns a count of subscribers to channels.",
    ),
    cmd(
        "pubsub|numpat",
        2,
        LOADING | STALE,
        Route::All(pubsub_numpat, Merge::Custom(count_distinct)),
        "Returns a count of unique pattern subscriptions.",
    ),
];
