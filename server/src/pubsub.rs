//! Pub/sub: which connections of this shard listen to which channels and patterns.
//!
//! A subscriber's connection lives on one shard and registers there only.
//! PUBLISH runs on every shard (it is an all-shards command), and each shard
//! delivers to its own subscribers, so a message published anywhere reaches
//! subscribers everywhere. Per publisher, messages arrive in order: a
//! connection's batches go out one at a time, and the queue between two
//! shards is FIFO. Messages wait in the subscriber's unbounded mailbox until
//! its connection writes them out.

use std::collections::HashMap;

use futures::channel::mpsc::UnboundedSender;

use crate::command::glob::glob_match;
use crate::reply::Reply;

/// A subscriber's mailbox.
pub type Mailbox = UnboundedSender<Reply>;

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

    /// Delivers a message to this shard's subscribers; returns how many received it.
    pub fn publish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for (_, mb) in subs {
                let push = Reply::Push(vec![Reply::bulk("message"), Reply::bulk(channel), Reply::bulk(message)]);
                n += mb.unbounded_send(push).is_ok() as usize;
            }
        }
        for (pattern, subs) in &self.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for (_, mb) in subs {
                let push = Reply::Push(vec![Reply::bulk("pmessage"), Reply::bulk(pattern), Reply::bulk(channel), Reply::bulk(message)]);
                n += mb.unbounded_send(push).is_ok() as usize;
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
