//! Transaction commands: <https://redis.io/docs/interactions/transactions/>.
//!
//! MULTI and DISCARD change only the connection; EXEC, WATCH and UNWATCH
//! talk to the shards that own the keys, so the connection runs them
//! itself ([`Route::Async`]). The logic is in [`crate::transaction`].

use super::flags::*;
use super::{AsyncCmd, Command, Route};
use crate::transaction;

const CATS: &[&str] = &["@fast", "@transaction"];

/// The transaction commands.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "multi",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        route: Route::Conn(transaction::multi),
        categories: CATS,
        summary: "Starts a transaction.",
    },
    Command {
        name: "exec",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        route: Route::Async(AsyncCmd::Exec),
        categories: &["@slow", "@transaction"],
        summary: "Executes all commands in a transaction.",
    },
    Command {
        name: "discard",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        route: Route::Conn(transaction::discard),
        categories: CATS,
        summary: "Discards a transaction.",
    },
    Command {
        name: "watch",
        arity: -2,
        flags: NOSCRIPT | LOADING | STALE | FAST,
        first_key: 1,
        last_key: -1,
        step: 1,
        route: Route::Async(AsyncCmd::Watch),
        categories: CATS,
        summary: "Monitors changes to keys to determine the execution of a transaction.",
    },
    Command {
        name: "unwatch",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        route: Route::Async(AsyncCmd::Unwatch),
        categories: CATS,
        summary: "Forgets about watched keys of a transaction.",
    },
];
