//! Client limits that close one connection and keep the server up: the
//! output buffer limits (`client-output-buffer-limit`) and the idle
//! `timeout`, with Redis's semantics.
//!
//! A client's pending output is what strand holds for it and has not yet
//! handed to the kernel: the replies of a batch not yet written, and the
//! pub/sub messages waiting in its mailbox (`omem` in CLIENT LIST). A client
//! over its class's hard limit, or over the soft limit for `soft-seconds` in
//! a row, is closed: the check runs when output is added (a PUBLISH, a
//! batch's replies) and in each shard's [`sweep`], so a client that stopped
//! reading is caught even when nothing more is sent to it. Closing sets the
//! connection's `killed` flag and shuts its socket down, as CLIENT KILL does,
//! so a write stuck on a full socket returns at once; the connection counts
//! `client_output_buffer_limit_disconnections` as it goes.
//!
//! The sweep also closes clients idle (no read, no completed write) for more
//! than `timeout` seconds, except, as in Redis, clients blocked in BLPOP and
//! kin and pub/sub subscribers.

use std::rc::Rc;
use std::time::Duration;

use crate::shard::ClientInfo;

/// One class's limits, in bytes and seconds; 0 turns that part off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObufLimit {
    /// Close at once above this many pending bytes.
    pub hard: u64,
    /// Close when above this many bytes for `soft_secs` seconds.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_secs: u64,
}

/// The client classes Redis has limits for (`master` has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Every other client.
    Normal,
    /// Replicas (strand has no replication yet: kept for CONFIG only).
    Replica,
    /// Clients with at least one channel or pattern subscription.
    PubSub,
}

/// `client-output-buffer-limit`: one [`ObufLimit`] per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimits {
    /// `normal`.
    pub normal: ObufLimit,
    /// `replica` (alias `slave`).
    pub replica: ObufLimit,
    /// `pubsub`.
    pub pubsub: ObufLimit,
}

impl Default for ObufLimits {
    /// Redis's defaults: normal 0 0 0, replica 256mb 64mb 60, pubsub 32mb 8mb 60.
    fn default() -> Self {
        ObufLimits {
            normal: ObufLimit::default(),
            replica: ObufLimit { hard: 256 << 20, soft: 64 << 20, soft_secs: 60 },
            pubsub: ObufLimit { hard: 32 << 20, soft: 8 << 20, soft_secs: 60 },
        }
    }
}

impl ObufLimits {
    /// The limit of one class.
    pub fn of(&self, class: Class) -> ObufLimit {
        match class {
            Class::Normal => self.normal,
            Class::Replica => self.replica,
            Class::PubSub => self.pubsub,
        }
    }

    /// Applies `<class> <hard> <soft> <soft-seconds>` groups (Redis's syntax,
    /// memory units allowed); classes not named keep their limits. The error
    /// is Redis's text, without the CONFIG SET prefix.
    pub fn apply(&mut self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut next = *self;
        for group in words.chunks(4) {
            let slot = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "replica" | "slave" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => return Err("Invalid client class specified in buffer limit configuration."),
            };
            let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let hard = crate::config::parse_memory(group[1]).ok_or(bad)?;
            let soft = crate::config::parse_memory(group[2]).ok_or(bad)?;
            let soft_secs = group[3].parse::<u64>().map_err(|_| bad)?;
            *slot = ObufLimit { hard, soft, soft_secs };
        }
        *self = next;
        Ok(())
    }

    /// CONFIG GET's value, as Redis writes it (bytes, `slave` for replicas).
    pub fn format(&self) -> String {
        let one = |name: &str, l: ObufLimit| format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs);
        [one("normal", self.normal), one("slave", self.replica), one("pubsub", self.pubsub)].join(" ")
    }
}

/// The class whose limit applies to a client.
pub fn class_of(info: &ClientInfo) -> Class {
    if info.subscribed {
        Class::PubSub
    } else {
        Class::Normal
    }
}

/// Redis's `checkClientOutputBufferLimits`: whether `info`'s pending output
/// breaks `limit` now; notes when the soft limit was first exceeded, and
/// forgets it once the client is back under.
pub fn over_limit(info: &mut ClientInfo, limit: ObufLimit, now_ms: u64) -> bool {
    let used = info.omem as u64;
    if limit.hard > 0 && used >= limit.hard {
        return true;
    }
    if limit.soft == 0 || used < limit.soft {
        info.soft_since_ms = None;
        return false;
    }
    match info.soft_since_ms {
        None => {
            info.soft_since_ms = Some(now_ms);
            false
        }
        Some(since) => now_ms.saturating_sub(since) > limit.soft_secs.saturating_mul(1000),
    }
}

/// Adds pending output to a client and closes it if that breaks its class's
/// limit; true when the client is (now or already) being closed, so the
/// caller should not queue more for it.
pub fn add_output(info: &mut ClientInfo, bytes: usize, limits: &ObufLimits) -> bool {
    if info.killed {
        return true;
    }
    info.omem += bytes;
    let limit = limits.of(class_of(info));
    // Under both limits (the usual case): no clock read.
    let under = |cap: u64| cap == 0 || (info.omem as u64) < cap;
    if under(limit.hard) && under(limit.soft) {
        info.soft_since_ms = None;
        return false;
    }
    let now = strand_engine::clock::unix_ms();
    if over_limit(info, limit, now) {
        close_for_output(info, now);
        return true;
    }
    false
}

/// Takes written bytes off a client's pending output.
pub fn written(info: &mut ClientInfo, bytes: usize, now_ms: u64) {
    info.omem = info.omem.saturating_sub(bytes);
    info.last_io_ms = now_ms;
}

/// Schedules a client over its output limit to be closed, with Redis's log line.
pub fn close_for_output(info: &mut ClientInfo, now_ms: u64) {
    let line = crate::command::connection::client_line(info, now_ms);
    tracing::warn!("Client {} scheduled to be closed ASAP for overcoming of output buffer limits.", line.trim_end());
    info.obuf_closed = true;
    close(info);
}

/// Marks a connection closed and shuts its socket down, waking its task
/// whether it is reading or stuck writing.
pub fn close(info: &mut ClientInfo) {
    if info.killed {
        return;
    }
    info.killed = true;
    // SAFETY: shutdown(2) on a socket of this shard; its connection task closes the descriptor after its I/O returns.
    unsafe { libc::shutdown(info.fd, libc::SHUT_RDWR) };
}

/// Whether the idle `timeout` (seconds, 0: never) closes this client now.
pub fn idle_expired(info: &ClientInfo, timeout: u64, now_ms: u64) -> bool {
    timeout > 0 && !info.blocked && !info.subscribed && now_ms.saturating_sub(info.last_io_ms) > timeout.saturating_mul(1000)
}

/// How often each shard looks over its clients.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Each shard's client cron: closes idle clients and clients that stay over
/// their output limits while nothing new is sent to them.
pub async fn sweep(shard: Rc<crate::dispatch::Shard>) {
    loop {
        strand_engine::runtime::sleep(SWEEP_EVERY).await;
        let st = shard.state.borrow();
        let (timeout, limits) = (st.config.timeout, st.config.client_output_buffer_limit);
        let now = strand_engine::clock::unix_ms();
        for info in st.clients.values() {
            let mut c = info.borrow_mut();
            if c.killed {
                continue;
            }
            if idle_expired(&c, timeout, now) {
                tracing::debug!(client = c.id, "Closing idle client");
                close(&mut c);
                continue;
            }
            let limit = limits.of(class_of(&c));
            if c.omem > 0 && over_limit(&mut c, limit, now) {
                close_for_output(&mut c, now);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redis_syntax_and_defaults() {
        let mut l = ObufLimits::default();
        assert_eq!(l.format(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        l.apply("pubsub 1mb 512kb 10 replica 1 1 1").unwrap();
        assert_eq!(l.format(), "normal 0 0 0 slave 1 1 1 pubsub 1048576 524288 10");
        l.apply("").unwrap();
        assert!(l.apply("pubsub 1mb 512kb").unwrap_err().starts_with("Wrong number"));
        assert!(l.apply("master 1 1 1").unwrap_err().starts_with("Invalid client class"));
        assert!(l.apply("normal x 1 1").unwrap_err().starts_with("Error in hard"));
        assert!(l.apply("normal 1 1 -1").unwrap_err().starts_with("Error in hard"));
        assert!(l.apply("normal 5 5 5 bogus 1 1 1").is_err());
        assert_eq!(l.normal, ObufLimit::default(), "a refused value changes nothing");
    }

    #[test]
    fn hard_and_soft_limits() {
        let limit = ObufLimit { hard: 100, soft: 10, soft_secs: 2 };
        let mut c = ClientInfo { omem: 50, ..ClientInfo::default() };
        assert!(!over_limit(&mut c, limit, 1_000));
        assert_eq!(c.soft_since_ms, Some(1_000));
        assert!(!over_limit(&mut c, limit, 3_000));
        assert!(over_limit(&mut c, limit, 3_001));
        c.omem = 5;
        assert!(!over_limit(&mut c, limit, 3_000));
        assert_eq!(c.soft_since_ms, None, "back under the soft limit starts the clock again");
        c.omem = 100;
        assert!(over_limit(&mut c, limit, 3_000));
        c.omem = 1 << 40;
        assert!(!over_limit(&mut c, ObufLimit::default(), 3_000), "0 0 0 is no limit");
    }

    #[test]
    fn idle_timeout_spares_blocked_clients_and_subscribers() {
        let mut c = ClientInfo { last_io_ms: 1_000, ..ClientInfo::default() };
        assert!(!idle_expired(&c, 0, 1_000_000));
        assert!(!idle_expired(&c, 2, 3_000));
        assert!(idle_expired(&c, 2, 3_001));
        c.blocked = true;
        assert!(!idle_expired(&c, 2, 10_000));
        c.blocked = false;
        c.subscribed = true;
        assert!(!idle_expired(&c, 2, 10_000));
    }
}
