//! The ACL command: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT,
//! LOAD, SAVE, LOG, GENPASS. See <https://redis.io/commands/acl/> and
//! <https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/>.
//!
//! The users live in [`crate::acl::AclState`], shared by every shard; these
//! handlers change it on the connection's shard, except DELUSER, which runs on
//! every shard so that each one disconnects the deleted users' clients.

use crate::acl::{self, User};
use crate::command::{err, flags::*, keyless, Command, Ctx, Merge, Route};
use crate::conn::ConnCtx;
use crate::reply::Reply;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// [ACL SETUSER](https://redis.io/commands/acl-setuser/): creates or changes a user; all rules apply or none.
fn setuser(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let name = match acl::valid_name(args[2]) {
        Ok(n) => n.to_string(),
        Err(e) => return Reply::error(e),
    };
    let result = c.shard.shared.acl.update(|users| {
        let mut u = users.get(&name).map(|u| (**u).clone()).unwrap_or_else(|| User::new(&name));
        for op in &args[3..] {
            u.apply(op).map_err(|e| format!("ERR Error in ACL SETUSER modifier '{}': {e}", lossy(op)))?;
        }
        users.insert(u);
        Ok(())
    });
    match result {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(e),
    }
}

/// [ACL GETUSER](https://redis.io/commands/acl-getuser/): a user's flags, password hashes, commands, keys and channels.
fn getuser(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let users = c.shard.shared.acl.users();
    let Some(u) = std::str::from_utf8(args[2]).ok().and_then(|n| users.get(n)) else { return Reply::Nil };
    Reply::Map(vec![
        (Reply::bulk("flags"), Reply::Set(u.flag_names().into_iter().map(Reply::bulk).collect())),
        (Reply::bulk("passwords"), Reply::Array(u.password_hashes().into_iter().map(Reply::bulk).collect())),
        (Reply::bulk("commands"), Reply::bulk(u.describe_commands())),
        (Reply::bulk("keys"), Reply::bulk(u.describe_keys())),
        (Reply::bulk("channels"), Reply::bulk(u.describe_channels())),
        (Reply::bulk("selectors"), Reply::Array(Vec::new())),
    ])
}

/// [ACL DELUSER](https://redis.io/commands/acl-deluser/) on one shard: shard 0
/// removes the users and counts them; every shard closes their connections.
fn deluser(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let names: Vec<String> = args[2..].iter().map(|a| lossy(a)).collect();
    if names.iter().any(|n| n == "default") {
        return Reply::error("ERR The 'default' user cannot be removed");
    }
    let removed = if ctx.shard.id == 0 {
        ctx.shard.shared.acl.update(|users| Ok(names.iter().filter(|n| users.remove(n)).count())).unwrap_or(0)
    } else {
        0
    };
    for c in ctx.shard.clients.values() {
        let mut c = c.borrow_mut();
        if names.contains(&c.user) {
            c.killed = true;
            // SAFETY: shutdown(2) on a socket this shard owns; the connection task closes it after its read returns.
            unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) };
        }
    }
    Reply::Int(removed as i64)
}

/// [ACL LIST](https://redis.io/commands/acl-list/): every user as an ACL file line.
fn list(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(c.shard.shared.acl.users().iter().map(|u| Reply::bulk(u.describe())).collect())
}

/// [ACL USERS](https://redis.io/commands/acl-users/).
fn users(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(c.shard.shared.acl.users().iter().map(|u| Reply::bulk(u.name.as_str())).collect())
}

/// [ACL WHOAMI](https://redis.io/commands/acl-whoami/).
fn whoami(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    Reply::bulk(c.conn.user.name.as_str())
}

/// [ACL CAT](https://redis.io/commands/acl-cat/): the categories, or the commands of one.
fn cat(_: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    match args.len() {
        2 => Reply::Array(acl::CATEGORIES.iter().map(|c| Reply::bulk(*c)).collect()),
        3 => {
            let name = lossy(args[2]);
            match acl::category(&name) {
                Some(i) => Reply::Array(acl::commands_in(i).into_iter().map(|(_, c)| Reply::bulk(c.name)).collect()),
                None => Reply::error(format!("ERR Unknown category '{name}'")),
            }
        }
        _ => crate::command::arity_error("acl|cat"),
    }
}

/// [ACL LOAD](https://redis.io/commands/acl-load/): replaces every user with the ACL file's, or changes nothing on an error.
fn load(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    let acl = &c.shard.shared.acl;
    let Some(path) = acl.file() else { return Reply::error(acl::NO_ACLFILE) };
    let requirepass = c.shard.state.borrow().config.requirepass.clone();
    match acl::AclState::read_file(&path, requirepass.as_deref()) {
        Ok(users) => {
            let _ = acl.update(|u| {
                *u = users;
                Ok(())
            });
            Reply::Ok
        }
        Err(e) => {
            Reply::error(format!("ERR {e}. WARNING: ACL errors detected, no change to the currently active ACL rules was performed."))
        }
    }
}

/// [ACL SAVE](https://redis.io/commands/acl-save/): writes every user to the ACL file.
fn save(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    match c.shard.shared.acl.save() {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(e),
    }
}

/// [ACL LOG](https://redis.io/commands/acl-log/): recent denials and failed AUTHs, newest first (10 unless a count is given); RESET clears it.
fn log(c: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let acl = &c.shard.shared.acl;
    let count = match args.get(2) {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case(b"reset") && args.len() == 3 => {
            acl.log_reset();
            return Reply::Ok;
        }
        Some(a) => match lossy(a).parse::<i64>() {
            Ok(n) if n >= 0 && args.len() == 3 => n as usize,
            _ => return Reply::error(err::NOT_INTEGER),
        },
    };
    let now = strand_engine::clock::unix_ms();
    let entries = acl.log_entries(count).into_iter().map(|e| {
        let age = now.saturating_sub(e.created_ms) as f64 / 1000.0;
        Reply::Map(vec![
            (Reply::bulk("count"), Reply::Int(e.count as i64)),
            (Reply::bulk("reason"), Reply::bulk(e.reason)),
            (Reply::bulk("context"), Reply::bulk(e.context)),
            (Reply::bulk("object"), Reply::bulk(e.object)),
            (Reply::bulk("username"), Reply::bulk(e.username)),
            (Reply::bulk("age-seconds"), Reply::Double(age)),
            (Reply::bulk("client-info"), Reply::bulk(e.client_info)),
            (Reply::bulk("entry-id"), Reply::Int(e.entry_id as i64)),
            (Reply::bulk("timestamp-created"), Reply::Int(e.created_ms as i64)),
            (Reply::bulk("timestamp-last-updated"), Reply::Int(e.updated_ms as i64)),
        ])
    });
    Reply::Array(entries.collect())
}

/// [ACL GENPASS](https://redis.io/commands/acl-genpass/): random hex, 256 bits unless asked.
fn genpass(_: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match lossy(a).parse::<i64>() {
            Ok(b) if (1..=4096).contains(&b) => b as usize,
            _ => {
                return Reply::error(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                )
            }
        },
    };
    let chars = bits.div_ceil(4);
    Reply::bulk((0..chars).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect::<String>())
}

/// ACL with an unknown subcommand, or HELP.
fn container(_: &mut ConnCtx<'_>, args: &[&[u8]]) -> Reply {
    if args[1].eq_ignore_ascii_case(b"help") {
        let lines = [
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]",
            "DELUSER <username> [<username> ...]",
            "GENPASS [<bits>]",
            "GETUSER <username>",
            "LIST",
            "LOAD",
            "LOG [<count> | RESET]",
            "SAVE",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "USERS",
            "WHOAMI",
        ];
        return Reply::Array(lines.iter().map(|l| Reply::simple(*l)).collect());
    }
    Reply::error(format!("ERR unknown subcommand '{}'. Try ACL HELP.", String::from_utf8_lossy(&args[1][..args[1].len().min(128)])))
}

const ADMIN_CATS: &[&str] = &["@admin", "@slow", "@dangerous"];
const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

/// The ACL command and its subcommands.
pub const COMMANDS: &[Command] = &[
    keyless("acl", -2, CONTAINER, Route::Conn(container), &["@slow"], "A container for Access List Control commands."),
    keyless("acl|setuser", -3, ADMIN_FLAGS, Route::Conn(setuser), ADMIN_CATS, "Creates and modifies an ACL user and its rules."),
    keyless("acl|getuser", 3, ADMIN_FLAGS, Route::Conn(getuser), ADMIN_CATS, "Lists the ACL rules of a user."),
    keyless(
        "acl|deluser",
        -3,
        ADMIN_FLAGS,
        Route::All(deluser, Merge::SumInt),
        ADMIN_CATS,
        "Deletes ACL users, and terminates their connections.",
    ),
    keyless("acl|list", 2, ADMIN_FLAGS, Route::Conn(list), ADMIN_CATS, "Dumps the effective rules in ACL file format."),
    keyless("acl|users", 2, ADMIN_FLAGS, Route::Conn(users), ADMIN_CATS, "Lists all ACL users."),
    keyless(
        "acl|whoami",
        2,
        NOSCRIPT | LOADING | STALE,
        Route::Conn(whoami),
        &["@slow"],
        "Returns the authenticated username of the current connection.",
    ),
    keyless(
        "acl|cat",
        -2,
        NOSCRIPT | LOADING | STALE,
        Route::Conn(cat),
        &["@slow"],
        "Lists the ACL categories, or the commands inside a category.",
    ),
    keyless("acl|load", 2, ADMIN_FLAGS, Route::Conn(load), ADMIN_CATS, "Reloads the rules from the configured ACL file."),
    keyless("acl|save", 2, ADMIN_FLAGS, Route::Conn(save), ADMIN_CATS, "Saves the effective ACL rules in the configured ACL file."),
    keyless("acl|log", -2, ADMIN_FLAGS, Route::Conn(log), ADMIN_CATS, "Lists recent security events generated due to ACL rules."),
    keyless(
        "acl|genpass",
        -2,
        NOSCRIPT | LOADING | STALE,
        Route::Conn(genpass),
        &["@slow"],
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
    ),
];
