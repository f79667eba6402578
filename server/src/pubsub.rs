//! Pub/sub: which connections of this shard listen to which channels and patterns.
//!
//! A subscriber's connection lives on one shard and registers there only.
//! PUBLISH runs on every shard (it is an all-shards command), and each shard
//! delivers to its own subscribers, so a message published anywhere reaches
//! subscribers everywhere. Per publisher, messages arrive in order: a
//! connection's batches go out one at a time, and the queue between two
//! shards is FIFO. Messages wait in the subscriber's mailbox until its
//! connection writes them out; the bytes waiting count as the client's
//! pending output, bounded by the `pubsub` class of
//! `client-output-buffer-limit` ([`crate::limits`]): a subscriber that stops
//! reading is closed, not allowed to eat memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::mpsc::UnboundedSender;

use crate::command::glob::glob_match;
use crate::limits::ObufLimits;
use crate::reply::Reply;
use crate::shard::ClientInfo;

/// A subscriber's mailbox: where its messages wait, and its connection's
/// info, which counts the bytes waiting.
#[derive(Clone)]
pub struct Mailbox {
    /// The sending half; the connection holds the receiver.
    pub tx: UnboundedSender<Reply>,
    /// The subscriber's info (pending output, the socket to close).
    pub info: Rc<RefCell<ClientInfo>>,
}

impl Mailbox {
    /// Queues a message unless that breaks the client's output limit (the
    /// client is then closed and the message dropped).
    fn deliver(&self, parts: Vec<Reply>, limits: &ObufLimits) -> bool {
        let size = encoded_len(&parts);
        if crate::limits::add_output(&mut self.info.borrow_mut(), size, limits) {
            return true;
        }
        self.tx.unbounded_send(Reply::Push(parts)).is_ok()
    }
}

/// Bytes of a push of bulk strings on the wire (the same in RESP2 and RESP3).
pub fn encoded_len(parts: &[Reply]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    let bulk = |r: &Reply| match r {
        Reply::Bulk(b) => 1 + digits(b.len()) + 2 + b.len() + 2,
        _ => 16,
    };
    1 + digits(parts.len()) + 2 + parts.iter().map(bulk).sum::<usize>()
}

/// The subscriptions of one shard's connections.
#[derive(Default)]
pub struct PubSub {
    channels: HashMap<Vec<u8>, Vec<(u64, Mailbox)>>,
    patterns: HashMap<Vec<u8>, Vec<(u64, Mailbox)>>,
}

impl PubSub {
    /// Adds a client to a channel (pattern when `pattern`).
    pub fn subscribe(&mut self, pattern: bool, name: &[u8], client: u64, mailbox: &Mailbox) {
        let map = if pattern { &mut self.patterns } else { &mut self.channels };
        let subs = map.entry(name.to_vec()).or_default();
        if !subs.iter().any(|(c, _)| *c == client) {
            subs.push((client, mailbox.clone()));
        }
    }

    /// Removes a client from a channel (pattern when `pattern`).
    pub fn unsubscribe(&mut self, pattern: bool, name: &[u8], client: u64) {
        let map = if pattern { &mut self.patterns } else { &mut self.channels };
        if let Some(subs) = map.get_mut(name) {
            subs.retain(|(c, _)| *c != client);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers a message to this shard's subscribers; returns how many
    /// received it. As in Redis, a subscriber closed for its output limit
    /// counts, though the message is dropped.
    pub fn publish(&mut self, channel: &[u8], message: &[u8], limits: &ObufLimits) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for (_, mb) in subs {
                let parts = vec![Reply::bulk("message"), Reply::bulk(channel), Reply::bulk(message)];
                n += mb.deliver(parts, limits) as usize;
            }
        }
        for (pattern, subs) in &self.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for (_, mb) in subs {
                let parts = vec![Reply::bulk("pmessage"), Reply::bulk(pattern), Reply::bulk(channel), Reply::bulk(message)];
                n += mb.deliver(parts, limits) as usize;
            }
        }
        n
    }

    /// Channels with at least one subscriber on this shard, optionally matching a pattern.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    /// Subscribers of a channel on this shard.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
    }

    /// Patterns with at least one subscriber on this shard.
    pub fn patterns(&self) -> Vec<Vec<u8>> {
        self.patterns.keys().cloned().collect()
    }
}
