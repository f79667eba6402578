//! Scripting commands: <https://redis.io/docs/interactions/programmability/eval-intro/>.
//!
//! EVAL and its kin run on the shard that owns the keys counted by
//! `numkeys` (with no keys, on the connection's shard; keys on several
//! shards make a cross-shard transaction, [`crate::gather::script`]). SCRIPT LOAD and SCRIPT FLUSH run on every shard;
//! SCRIPT EXISTS and SCRIPT KILL on the connection's shard, which sees what
//! every shard loaded and which shard is busy. The engine is
//! [`crate::scripting`]. FUNCTION and FCALL are not implemented.

use super::flags::*;
use super::{Command, Ctx, Merge, Route};
use crate::reply::Reply;
use crate::scripting;

/// [EVAL](https://redis.io/commands/eval/): runs a script.
pub fn eval(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    scripting::eval(ctx, args, false, false)
}

/// [EVALSHA](https://redis.io/commands/evalsha/): runs a cached script by its SHA-1.
pub fn evalsha(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    scripting::eval(ctx, args, true, false)
}

/// [EVAL_RO](https://redis.io/commands/eval_ro/): runs a script that may not write.
pub fn eval_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    scripting::eval(ctx, args, false, true)
}

/// [EVALSHA_RO](https://redis.io/commands/evalsha_ro/): runs a cached script that may not write.
pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    scripting::eval(ctx, args, true, true)
}

/// [SCRIPT LOAD](https://redis.io/commands/script-load/) on one shard: compiles and caches.
fn script_load(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    scripting::load(ctx, args[2])
}

/// [SCRIPT EXISTS](https://redis.io/commands/script-exists/): 1 or 0 per SHA-1.
fn script_exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    Reply::Array(args[2..].iter().map(|sha| Reply::Int(scripting::exists(&ctx.shard.shared, sha) as i64)).collect())
}

/// [SCRIPT FLUSH](https://redis.io/commands/script-flush/) on one shard: forgets every script.
fn script_flush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let mode_ok = match args.len() {
        2 => true,
        3 => args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !mode_ok {
        return Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    scripting::flush(ctx);
    Reply::Ok
}

/// [SCRIPT KILL](https://redis.io/commands/script-kill/): stops a busy script that has not written.
fn script_kill(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    scripting::kill(&ctx.shard.shared)
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// [SCRIPT HELP](https://redis.io/commands/script-help/).
fn script_help(_: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(HELP.iter().map(|l| Reply::simple(*l)).collect())
}

/// SCRIPT with a subcommand that has no entry of its own.
fn script_container(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if args[1].eq_ignore_ascii_case(b"debug") {
        return Reply::error("ERR SCRIPT DEBUG is not supported: strand has no Lua debugger");
    }
    Reply::error(format!("ERR unknown subcommand '{}'. Try SCRIPT HELP.", String::from_utf8_lossy(&args[1][..args[1].len().min(128)])))
}

/// A keyless entry of this family's categories.
const fn cmd(name: &'static str, arity: i32, flags: u32, route: Route, summary: &'static str) -> Command {
    super::keyless(name, arity, flags, route, CATEGORIES, summary)
}

const CATEGORIES: &[&str] = &["@slow", "@scripting"];

/// The scripting commands. EVAL's keys are counted by its numkeys argument ([`super::NUMKEYS`]).
pub const COMMANDS: &[Command] = &[
    cmd("eval", -3, NOSCRIPT | STALE | MOVABLEKEYS, Route::Key(eval), "Executes a server-side Lua script."),
    cmd("evalsha", -3, NOSCRIPT | STALE | MOVABLEKEYS, Route::Key(evalsha), "Executes a server-side Lua script by SHA1 digest."),
    cmd("eval_ro", -3, READONLY | NOSCRIPT | STALE | MOVABLEKEYS, Route::Key(eval_ro), "Executes a read-only server-side Lua script."),
    cmd(
        "evalsha_ro",
        -3,
        READONLY | NOSCRIPT | STALE | MOVABLEKEYS,
        Route::Key(evalsha_ro),
        "Executes a read-only server-side Lua script by SHA1 digest.",
    ),
    cmd("script", -2, CONTAINER, Route::Local(script_container), "A container for Lua scripts management commands."),
    cmd(
        "script|load",
        3,
        NOSCRIPT | STALE,
        Route::All(script_load, Merge::FirstError),
        "Loads a server-side Lua script to the script cache.",
    ),
    cmd(
        "script|exists",
        -3,
        NOSCRIPT | STALE,
        Route::Local(script_exists),
        "Determines whether server-side Lua scripts exist in the script cache.",
    ),
    cmd(
        "script|flush",
        -2,
        NOSCRIPT,
        Route::All(script_flush, Merge::FirstError),
        "Removes all server-side Lua scripts from the script cache.",
    ),
    cmd("script|kill", 2, NOSCRIPT, Route::Local(script_kill), "Terminates a server-side Lua script during execution."),
    cmd("script|help", 2, LOADING | STALE, Route::Local(script_help), "Returns helpful text about the different subcommands."),
];
