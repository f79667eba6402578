//! The memory budget at the door: eviction before a command runs, and
//! Redis's OOM refusal when a shard cannot get back under its budget.
//!
//! Redis runs `performEvictions` before every command when `maxmemory` is
//! set, and refuses a command flagged `denyoom` (one that may add data) if
//! memory is still over the limit. strand does the same per shard, on the
//! shard that owns the command's keys: [`admit`] evicts by the policy
//! (bounded work, see [`strand_engine::keyspace::evict`]) and answers
//! [`OOM`] for DENYOOM commands when nothing more can go; reads, DEL and
//! the like still run. Inside MULTI, [`admit_queued`] refuses every command
//! queued while the connection's shard is full (EXEC then answers
//! EXECABORT), and [`admit_exec`] refuses at EXEC a transaction holding a
//! DENYOOM command when its shard is full, as Redis 7 does.

use strand_engine::keyspace::evict::Room;

use crate::command::flags;
use crate::reply::Reply;
use crate::shard::ShardState;

/// Redis's reply to a command refused for memory.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Evicts if the shard is over budget; false if it is still over and nothing more can go.
fn has_room(st: &mut ShardState) -> bool {
    if !st.ks.over_budget() {
        return true;
    }
    let now = st.ks.now();
    let room = st.ks.make_room(now);
    st.publish_key_events();
    room != Room::Full
}

/// Before a command runs on its shard: evicts as needed; the OOM reply if
/// the command is DENYOOM and the shard is still over its budget.
pub fn admit(st: &mut ShardState, args: &[&[u8]]) -> Option<Reply> {
    if st.ks.limits().budget == 0 || has_room(st) {
        return None;
    }
    let denyoom = crate::command::lookup(args).is_some_and(|c| c.flags & flags::DENYOOM != 0);
    denyoom.then(|| refuse(st, Reply::error(OOM)))
}

/// A command queued inside MULTI on this shard's connection: any command is
/// refused while the shard is over budget (queueing takes memory too).
pub fn admit_queued(st: &mut ShardState) -> Option<Reply> {
    if st.ks.limits().budget == 0 || has_room(st) {
        return None;
    }
    Some(refuse(st, Reply::error(OOM)))
}

/// EXEC of a transaction with a DENYOOM command: EXECABORT if the shard is full.
pub fn admit_exec(st: &mut ShardState, denyoom: bool) -> Option<Reply> {
    full(st, denyoom).then(exec_abort)
}

/// Whether work that may add data (`denyoom`) is refused: the shard is over
/// its budget after evicting what it can. A refusal counts as an error.
pub fn full(st: &mut ShardState, denyoom: bool) -> bool {
    if !denyoom || st.ks.limits().budget == 0 || has_room(st) {
        return false;
    }
    st.stats.errors += 1;
    true
}

/// What EXEC answers when a shard it writes on is full.
pub fn exec_abort() -> Reply {
    Reply::error(format!("EXECABORT Transaction discarded because of: {OOM}"))
}

fn refuse(st: &mut ShardState, reply: Reply) -> Reply {
    st.stats.errors += 1;
    reply
}
