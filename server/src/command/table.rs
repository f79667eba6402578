//! The lookup from a command name to its [`Command`] entry.
//!
//! Names are matched case-insensitively. A container command (CLIENT,
//! CONFIG ...) first looks up `name|subcommand`, so a subcommand may route
//! differently from its container. Every entry also has a dense index
//! ([`CmdId`]), its place in the sorted table, for per-command counters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::{
    acl, connection, debug, hashes, keys, latency, lists, pubsub, queues, scripting, search, search_aggregate, search_query, series,
    series_multi, server, sets, slowlog, stream_groups, streams, strings, suggest, transactions, zsets, Command,
};

/// Every command family's table.
pub const COMMANDS: &[&[Command]] = &[
    strings::COMMANDS,
    keys::COMMANDS,
    hashes::COMMANDS,
    lists::COMMANDS,
    sets::COMMANDS,
    connection::COMMANDS,
    acl::COMMANDS,
    server::COMMANDS,
    transactions::COMMANDS,
    pubsub::COMMANDS,
    scripting::COMMANDS,
    zsets::COMMANDS,
    streams::COMMANDS,
    stream_groups::COMMANDS,
    queues::COMMANDS,
    series::COMMANDS,
    series_multi::COMMANDS,
    search::COMMANDS,
    search_query::COMMANDS,
    search_aggregate::COMMANDS,
    suggest::COMMANDS,
    slowlog::COMMANDS,
    latency::COMMANDS,
    debug::COMMANDS,
];

/// A command's dense index: its position in [`entries`]. Per-command
/// counters ([`crate::stats`]) are vectors indexed by it.
pub type CmdId = u16;

/// Every command entry sorted by name; a command's [`CmdId`] is its position.
pub fn entries() -> &'static [&'static Command] {
    static ENTRIES: OnceLock<Vec<&'static Command>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut v: Vec<&'static Command> = COMMANDS.iter().flat_map(|t| t.iter()).collect();
        v.sort_by_key(|c| c.name);
        v.dedup_by_key(|c| c.name);
        v
    })
}

/// Name → command, hashed with FNV-1a rather than the standard library's
/// SipHash: every request looks its name up here, the names are a few bytes
/// and they are ours, so there is no attacker to keep out of the table.
type Index = HashMap<&'static str, (CmdId, &'static Command), BuildHasherDefault<Fnv>>;

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| entries().iter().enumerate().map(|(i, c)| (c.name, (i as CmdId, *c))).collect())
}

/// Every command, sorted by name.
pub fn all() -> Vec<&'static Command> {
    entries().to_vec()
}

/// Looks a name up (already lower-case).
pub fn by_name(name: &str) -> Option<&'static Command> {
    index().get(name).map(|&(_, c)| c)
}

/// The command with index `id`.
pub fn by_id(id: CmdId) -> Option<&'static Command> {
    entries().get(id as usize).copied()
}

/// The index of the command named `name` (already lower-case).
pub fn id_of(name: &str) -> Option<CmdId> {
    index().get(name).map(|&(id, _)| id)
}

/// Looks a name up (already lower-case), with its id as an index (ACL bitsets).
pub fn id_by_name(name: &str) -> Option<(usize, &'static Command)> {
    index().get(name).map(|&(id, c)| (id as usize, c))
}

/// Number of commands (ids run from 0 to this, exclusive).
pub fn count() -> usize {
    entries().len()
}

fn lower<'a>(name: &[u8], buf: &'a mut [u8; 64]) -> Option<&'a str> {
    let b = buf.get_mut(..name.len())?;
    for (d, s) in b.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(b).ok()
}

/// The entry for a request: `name|sub` for containers, else `name`.
pub fn lookup(args: &[&[u8]]) -> Option<&'static Command> {
    lookup_id(args).map(|(_, c)| c)
}

/// [`lookup`], with the entry's [`CmdId`].
pub fn lookup_id(args: &[&[u8]]) -> Option<(CmdId, &'static Command)> {
    let mut buf = [0u8; 64];
    let name = args.first()?;
    let top = *index().get(lower(name, &mut buf)?)?;
    if top.1.flags & super::flags::CONTAINER != 0 {
        if let Some(sub) = args.get(1) {
            let mut joined = Vec::with_capacity(name.len() + 1 + sub.len());
            joined.extend_from_slice(name);
            joined.push(b'|');
            joined.extend_from_slice(sub);
            let mut buf2 = [0u8; 64];
            if let Some(&c) = lower(&joined, &mut buf2).and_then(|n| index().get(n)) {
                return Some(c);
            }
        }
    }
    Some(top)
}
