//! [DEBUG](https://redis.io/docs/latest/commands/debug/): strand's only
//! subcommand is FAULT, which injects storage faults under the log for
//! tests (see `strand_engine::log::faults`).
//!
//! As in Redis 7, DEBUG is refused unless the server was started with
//! `--enable-debug-command yes` (or `local`, for loopback clients only):
//! a fault stops every shard from accepting writes, which no client of a
//! production server should be able to do. Redis's other DEBUG subcommands
//! (OBJECT, RELOAD, SLEEP ...) answer as unknown subcommands.
//!
//! - `DEBUG FAULT <write|sync|create> <eio|enospc|short|torn|slow> [COUNT n] [SHARD s]`
//!   arms a fault (COUNT: that many operations fail, then it disarms; SHARD:
//!   only that shard's log).
//! - `DEBUG FAULT CLEAR` disarms it; `DEBUG FAULT STATUS` describes it.

use super::server::{help, unknown_sub};
use super::{err, flags::*, keyless, Command, Route};
use crate::config::DebugAccess;
use crate::conn::ConnCtx;
use crate::reply::Reply;
use strand_engine::log::faults;

/// Redis's refusal while `enable-debug-command` does not allow the client.
pub const NOT_ALLOWED: &str =
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a \
                               local connection, otherwise you need to set this option in the configuration file, and then restart the \
                               server.";

/// [DEBUG](https://redis.io/docs/latest/commands/debug/).
fn debug(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let access = c.shard.state.borrow().config.debug_command;
    let local = || c.conn.info.borrow().addr.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
    let allowed = match access {
        DebugAccess::Yes => true,
        DebugAccess::Local => local(),
        DebugAccess::No => false,
    };
    if !allowed {
        return Reply::error(NOT_ALLOWED);
    }
    let sub = String::from_utf8_lossy(args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "fault" => fault(&args[2..]),
        "help" => help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "FAULT <write|sync|create> <eio|enospc|short|torn|slow> [COUNT <n>] [SHARD <s>]",
            "    Make the log's next writes, syncs or segment creations fail (every one, or <n>), on every shard or shard <s>.",
            "FAULT CLEAR",
            "    Stop injecting faults.",
            "FAULT STATUS",
            "    Describe the fault armed, or nil.",
            "HELP",
            "    Print this help.",
        ]),
        _ => unknown_sub(args[1], "DEBUG"),
    }
}

fn fault(args: &[&[u8]]) -> Reply {
    let words: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("clear") if words.len() == 1 => {
            faults::clear();
            Reply::Ok
        }
        Some("status") if words.len() == 1 => match faults::armed() {
            Some(p) => Reply::bulk(format!(
                "{:?} {:?} count={} shard={}",
                p.target,
                p.kind,
                p.count,
                p.shard.map_or("all".into(), |s| s.to_string())
            )),
            None => Reply::Nil,
        },
        Some(_) if words.len() >= 2 => {
            let (mut count, mut shard) = (None, None);
            let mut rest = words[2..].chunks(2);
            for pair in rest.by_ref() {
                match (pair[0].to_ascii_lowercase().as_str(), pair.get(1)) {
                    ("count", Some(v)) => count = Some(v.as_str()),
                    ("shard", Some(v)) => shard = Some(v.as_str()),
                    _ => return Reply::error(err::SYNTAX),
                }
            }
            match faults::Plan::parse(&words[0], &words[1], count, shard) {
                Ok(plan) => {
                    tracing::warn!(?plan, "DEBUG FAULT: storage fault armed");
                    faults::arm(plan);
                    Reply::Ok
                }
                Err(e) => Reply::error(format!("ERR {e}")),
            }
        }
        _ => Reply::error(err::SYNTAX),
    }
}

/// The DEBUG command.
pub const COMMANDS: &[Command] = &[keyless(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    Route::Conn(debug),
    &["@admin", "@slow", "@dangerous"],
    "A container for debugging commands: FAULT injects storage faults (needs --enable-debug-command).",
)];
