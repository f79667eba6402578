//! ACL users and their rules: who may connect, and which commands and keys
//! each user may touch. See <https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/>.
//!
//! A [`User`] is built by applying rules (`on`, `>password`, `~pattern`,
//! `+@category`, `-command` ...) in order, as `ACL SETUSER` and the ACL file
//! write them. Its commands are a bitset over command ids
//! ([`crate::command::table::lookup_id`]), so the check on the request path is
//! one bit test; a user with every command and every key (the `default` user
//! unless configured otherwise) is flagged [`User::unrestricted`] and pays no
//! check at all. Passwords are kept only as SHA-256 hashes and compared in
//! constant time.
//!
//! The users of the process are one immutable [`Users`] table behind an
//! [`AclState`] in [`crate::shard::Shared`]: a change builds a new table,
//! swaps it in and bumps an epoch. Each connection holds an `Arc` of its
//! user and looks at the epoch once per read, taking the new version of its
//! user when it changed (or closing, when its user was deleted).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use sha2::{Digest, Sha256};

use crate::command::glob::glob_match;
use crate::command::{flags, table, Command};

/// The ACL categories, in the order `ACL CAT` lists them: Redis's, then strand's own views.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    "queue",
    "timeseries",
    "search",
];

/// Index of a category name (without the `@`, any case).
pub fn category(name: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name))
}

/// Per command id, the bitmask of its categories (bit i: [`CATEGORIES`]`[i]`).
fn command_categories() -> &'static [u32] {
    static CATS: OnceLock<Vec<u32>> = OnceLock::new();
    CATS.get_or_init(|| {
        table::all()
            .iter()
            .map(|c| c.categories.iter().filter_map(|n| category(n.trim_start_matches('@'))).fold(0u32, |m, i| m | (1 << i)))
            .collect()
    })
}

/// The commands of a category, by id.
pub fn commands_in(cat: usize) -> Vec<(usize, &'static Command)> {
    let cats = command_categories();
    table::all().into_iter().enumerate().filter(|(id, _)| cats.get(*id).is_some_and(|m| m & (1 << cat) != 0)).collect()
}

/// Redis's message when the pattern list already holds `*`.
const AFTER_ALLKEYS: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const AFTER_ALLCHANNELS: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";

/// One key pattern and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    pattern: Vec<u8>,
    read: bool,
    write: bool,
}

/// A user: its flags, password hashes, commands, key and channel patterns.
#[derive(Debug, Clone)]
pub struct User {
    /// The user name.
    pub name: String,
    /// `on`: may authenticate.
    pub enabled: bool,
    nopass: bool,
    passwords: Vec<[u8; 32]>,
    /// The base of the command rules: `+@all` (true) or `-@all`.
    base_all: bool,
    /// Allowed commands, one bit per command id.
    allowed: Vec<u64>,
    /// Command rules after the base, as `ACL GETUSER` shows them.
    rules: Vec<String>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
    /// Every command allowed: no per-command bit test.
    every_command: bool,
}

/// Why a command was refused: what ACL LOG records and NOPERM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (its full name, `acl|setuser` for a subcommand).
    Command(&'static str),
    /// A key.
    Key(Vec<u8>),
    /// A channel or pattern.
    Channel(Vec<u8>),
}

impl Denied {
    /// Redis 7.2's error text; it names the user for commands, and neither key nor channel.
    pub fn message(&self, user: &str) -> String {
        match self {
            Denied::Command(name) => format!("NOPERM User {user} has no permissions to run the '{name}' command"),
            Denied::Key(_) => "NOPERM No permissions to access a key".into(),
            Denied::Channel(_) => "NOPERM No permissions to access a channel".into(),
        }
    }

    /// ACL LOG's reason and object.
    fn reason_object(&self) -> (&'static str, String) {
        match self {
            Denied::Command(name) => ("command", name.to_string()),
            Denied::Key(k) => ("key", String::from_utf8_lossy(k).into_owned()),
            Denied::Channel(c) => ("channel", String::from_utf8_lossy(c).into_owned()),
        }
    }
}

/// One ACL LOG entry; repeats of the same denial within a minute are counted in it.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// How many times it happened.
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    /// The command, key or channel; `AUTH` for a failed login.
    pub object: String,
    /// The user (for `auth`, the name tried).
    pub username: String,
    /// The client, as CLIENT LIST shows it.
    pub client_info: String,
    /// Increasing id.
    pub entry_id: u64,
    /// Unix ms of the first and the latest occurrence.
    pub created_ms: u64,
    /// Unix ms of the latest occurrence.
    pub updated_ms: u64,
}

/// Most entries ACL LOG keeps (Redis's acllog-max-len default).
const LOG_MAX: usize = 128;

/// SHA-256 of a password.
pub fn hash(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

/// Compares two hashes in time independent of where they differ.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let v = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok())?;
        out[i] = v;
    }
    Some(out)
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, no commands, keys or channels.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            base_all: false,
            allowed: vec![0; table::count().div_ceil(64)],
            rules: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
            every_command: false,
        }
    }

    /// The `default` user: `on nopass ~* &* +@all`, or with a password when `requirepass` is set.
    pub fn default_user(requirepass: Option<&str>) -> User {
        let mut u = User::new("default");
        for rule in ["on", "~*", "&*", "+@all"] {
            let _ = u.apply(rule.as_bytes());
        }
        u.set_requirepass(requirepass);
        u
    }

    /// What `requirepass` does to the default user: one password, or none (nopass).
    pub fn set_requirepass(&mut self, requirepass: Option<&str>) {
        self.passwords.clear();
        match requirepass {
            Some(p) => {
                self.nopass = false;
                self.passwords.push(hash(p.as_bytes()));
            }
            None => self.nopass = true,
        }
    }

    /// Whether the user may run every command on every key: no check at all.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.every_command && self.all_keys && self.all_channels
    }

    /// Whether a connection is authenticated as this user without a password.
    pub fn open(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether the user may run the command with this id.
    #[inline]
    pub fn can_run(&self, id: usize) -> bool {
        self.every_command || self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Whether the user may use a channel (PUBLISH, SUBSCRIBE: glob match) or a
    /// pattern (PSUBSCRIBE: only a pattern the user holds, literally), as in Redis.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels || self.channels.iter().any(|c| if is_pattern { c == channel } else { glob_match(c, channel, false) })
    }

    /// Whether the user may touch `key` for reading and/or writing.
    pub fn key_allowed(&self, key: &[u8], read: bool, write: bool) -> bool {
        self.all_keys || self.keys.iter().any(|p| (p.read || !read) && (p.write || !write) && glob_match(&p.pattern, key, false))
    }

    /// The NOPERM error for a command this user may not run on these
    /// arguments (command, then channels, then keys), if any. Commands allowed before AUTH are open to every user,
    /// as in Redis. A command that writes needs write access to its keys, one
    /// that only reads needs read access, any other both.
    pub fn check(&self, id: usize, cmd: &Command, args: &[&[u8]]) -> Option<Denied> {
        if cmd.flags & flags::NO_AUTH != 0 {
            return None;
        }
        if !self.can_run(id) {
            return Some(Denied::Command(cmd.name));
        }
        if !self.all_channels {
            let channels = match cmd.name {
                "publish" | "spublish" => args.get(1..2),
                "subscribe" | "ssubscribe" | "psubscribe" => args.get(1..),
                _ => None,
            };
            let is_pattern = cmd.name == "psubscribe";
            if let Some(c) = channels.and_then(|chs| chs.iter().find(|c| !self.channel_allowed(c, is_pattern))) {
                return Some(Denied::Channel(c.to_vec()));
            }
        }
        if !self.all_keys {
            let write = cmd.flags & flags::READONLY == 0;
            let read = cmd.flags & flags::WRITE == 0;
            for pos in cmd.keys_of(args) {
                if let Some(key) = args.get(pos) {
                    if !self.key_allowed(key, read, write) {
                        return Some(Denied::Key(key.to_vec()));
                    }
                }
            }
        }
        None
    }

    /// Whether `password` is one of the user's (constant time in where it differs).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = hash(password);
        self.passwords.iter().fold(false, |ok, p| ct_eq(p, &h) | ok)
    }

    fn set_bits(&mut self, id: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn recompute(&mut self) {
        self.every_command = (0..table::count()).all(|id| self.bit(id));
    }

    /// The command ids a `+`/`-` rule names: `@category`, or a command (with a container's subcommands).
    fn rule_ids(name: &str) -> Option<Vec<usize>> {
        match name.strip_prefix('@') {
            Some(cat) => Some(commands_in(category(cat)?).into_iter().map(|(id, _)| id).collect()),
            None => Self::command_ids(name),
        }
    }

    /// Rebuilds the command bits from the base and the rules.
    fn replay(&mut self) {
        let fill = if self.base_all { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        for r in self.rules.clone() {
            let allow = r.starts_with('+');
            for id in Self::rule_ids(&r[1..]).unwrap_or_default() {
                self.set_bits(id, allow);
            }
        }
    }

    /// A command (and, for a container, its subcommands) by name, with ids.
    fn command_ids(name: &str) -> Option<Vec<usize>> {
        let (id, cmd) = table::id_by_name(name)?;
        let mut ids = vec![id];
        if cmd.flags & flags::CONTAINER != 0 {
            let prefix = format!("{name}|");
            ids.extend(table::all().iter().enumerate().filter(|(_, c)| c.name.starts_with(&prefix)).map(|(i, _)| i));
        }
        Some(ids)
    }

    /// Applies one rule, as `ACL SETUSER` does; the error says why it is refused.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(rule);
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => return self.apply(b"~*"),
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" => return self.apply(b"&*"),
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.base_all = true;
                self.rules.clear();
                self.allowed.iter_mut().for_each(|w| *w = u64::MAX);
            }
            "nocommands" | "-@all" => {
                self.base_all = false;
                self.rules.clear();
                self.allowed.iter_mut().for_each(|w| *w = 0);
            }
            "reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels", "off", "-@all"] {
                    self.apply(r.as_bytes())?;
                }
            }
            "sanitize-payload" | "skip-sanitize-payload" | "clearselectors" => {}
            _ => return self.apply_prefixed(rule, &lower),
        }
        self.recompute();
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &[u8], lower: &str) -> Result<(), String> {
        let unknown = || "Unknown command or category name in ACL".to_string();
        match rule.first() {
            Some(b'>') => {
                let h = hash(&rule[1..]);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            Some(b'#') => {
                let h = parse_hex(&rule[1..]).ok_or_else(|| {
                    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters".to_string()
                })?;
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            Some(b'<') | Some(b'!') => {
                let h = if rule[0] == b'<' {
                    hash(&rule[1..])
                } else {
                    parse_hex(&rule[1..]).ok_or_else(|| {
                        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters".to_string()
                    })?
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err("The password you are trying to remove from the user does not exist".into());
                }
            }
            Some(b'~') => self.add_key(&rule[1..], true, true)?,
            Some(b'%') => {
                let Some(tilde) = rule.iter().position(|&b| b == b'~') else { return Err("Syntax error".into()) };
                let (mut read, mut write) = (false, false);
                for &f in &rule[1..tilde] {
                    match f.to_ascii_uppercase() {
                        b'R' => read = true,
                        b'W' => write = true,
                        _ => return Err("Syntax error".into()),
                    }
                }
                if !read && !write {
                    return Err("Syntax error".into());
                }
                self.add_key(&rule[tilde + 1..], read, write)?;
            }
            Some(b'&') => {
                let pat = &rule[1..];
                if self.all_channels {
                    return Err(AFTER_ALLCHANNELS.into());
                }
                if pat == b"*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
            }
            Some(&sign @ (b'+' | b'-')) => {
                let allow = sign == b'+';
                let name = &lower[1..];
                let ids = Self::rule_ids(name).ok_or_else(unknown)?;
                // Drop earlier rules this one overrides, then add it only if it changes something.
                let covered: Vec<&str> = match name.strip_prefix('@') {
                    Some(_) => ids.iter().filter_map(|&id| table::all().get(id).map(|c| c.name)).collect(),
                    None => Vec::new(),
                };
                self.rules.retain(|r| r[1..] != *name && !covered.contains(&&r[1..]));
                self.replay();
                if ids.iter().any(|&id| self.bit(id) != allow) {
                    self.rules.push(format!("{}{}", sign as char, name));
                    self.replay();
                }
            }
            _ => return Err("Syntax error".into()),
        }
        self.recompute();
        Ok(())
    }

    fn add_key(&mut self, pat: &[u8], read: bool, write: bool) -> Result<(), String> {
        if self.all_keys {
            return Err(AFTER_ALLKEYS.into());
        }
        if pat == b"*" && read && write {
            self.all_keys = true;
            self.keys.clear();
        } else if let Some(p) = self.keys.iter_mut().find(|p| p.pattern == pat) {
            p.read |= read;
            p.write |= write;
        } else {
            self.keys.push(KeyPattern { pattern: pat.to_vec(), read, write });
        }
        Ok(())
    }

    /// The `flags` of ACL GETUSER.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        f
    }

    /// Password hashes in hex.
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(hex).collect()
    }

    /// The command rules: `+@all` or `-@all`, then the rules after it.
    pub fn describe_commands(&self) -> String {
        let mut s = String::from(if self.base_all { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// The key patterns, as ACL GETUSER shows them (`~*`, `%R~p`, `~p` ...).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|p| {
                let pat = String::from_utf8_lossy(&p.pattern);
                match (p.read, p.write) {
                    (true, true) => format!("~{pat}"),
                    (true, false) => format!("%R~{pat}"),
                    _ => format!("%W~{pat}"),
                }
            })
            .collect();
        parts.join(" ")
    }

    /// The channel patterns, as ACL GETUSER shows them.
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    /// The user as one ACL LIST line (also the ACL file format): `user name on #hash ~* &* +@all`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name), (if self.enabled { "on" } else { "off" }).to_string()];
        if self.nopass {
            parts.push("nopass".into());
        }
        parts.extend(self.passwords.iter().map(|p| format!("#{}", hex(p))));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

/// Checks a user name: no spaces or NUL, as Redis.
pub fn valid_name(name: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(name).map_err(|_| "ERR Usernames can't contain spaces or null characters".to_string())?;
    if s.is_empty() || s.bytes().any(|b| b == b' ' || b == 0 || b == b'\n' || b == b'\r' || b == b'\t') {
        return Err("ERR Usernames can't contain spaces or null characters".into());
    }
    Ok(s)
}

/// The users of the process at one moment. Never changed in place: a change builds a new table.
#[derive(Debug, Clone)]
pub struct Users {
    users: BTreeMap<String, Arc<User>>,
}

impl Users {
    /// Only the default user, with `requirepass` as its password if set.
    pub fn new(requirepass: Option<&str>) -> Users {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user(requirepass)));
        Users { users }
    }

    /// A user by name.
    pub fn get(&self, name: &str) -> Option<&Arc<User>> {
        self.users.get(name)
    }

    /// The default user.
    pub fn default_user(&self) -> Arc<User> {
        self.users.get("default").cloned().unwrap_or_else(|| Arc::new(User::default_user(None)))
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    /// Adds or replaces a user.
    pub fn insert(&mut self, user: User) {
        self.users.insert(user.name.clone(), Arc::new(user));
    }

    /// Removes a user; whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// The user a connection becomes with `AUTH name password`, if the pair is right and the user is on.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let u = std::str::from_utf8(name).ok().and_then(|n| self.users.get(n))?;
        (u.enabled && u.password_ok(password)).then(|| u.clone())
    }

    /// Parses an ACL file: one `user <name> <rules>...` per line; blank lines are skipped.
    /// Without a `default` line, the default user is `requirepass`'s.
    pub fn parse_file(text: &str, path: &Path, requirepass: Option<&str>) -> Result<Users, String> {
        let mut out = Users::new(requirepass);
        let mut seen = std::collections::HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let at = |why: &str| format!("{}:{}: {why}", path.display(), n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            if words[0] != "user" || words.len() < 2 {
                return Err(at("line should start with user keyword"));
            }
            let name = valid_name(words[1].as_bytes()).map_err(|e| at(e.trim_start_matches("ERR ")))?;
            if !seen.insert(name.to_string()) {
                return Err(at(&format!("duplicate user '{name}' found")));
            }
            let mut u = User::new(name);
            for w in &words[2..] {
                u.apply(w.as_bytes()).map_err(|e| at(&format!("Error in applying operation '{w}': {e}")))?;
            }
            out.insert(u);
        }
        Ok(out)
    }

    /// The ACL file text for these users: one ACL LIST line each.
    pub fn file_text(&self) -> String {
        self.users.values().map(|u| u.describe() + "\n").collect()
    }
}

/// The process's ACL: the current [`Users`], an epoch bumped on every change, and the ACL file.
#[derive(Debug)]
pub struct AclState {
    current: RwLock<Arc<Users>>,
    epoch: AtomicU64,
    file: RwLock<Option<PathBuf>>,
    /// ACL LOG, newest first; written only on a denial or a failed AUTH, never on the request path otherwise.
    log: Mutex<(u64, VecDeque<LogEntry>)>,
    /// The users of connections that are not unrestricted, by client id, for
    /// the commands their scripts run on whichever shard; `restricted` counts
    /// them so that scripts of unrestricted clients skip the lock.
    sessions: Mutex<std::collections::HashMap<u64, Arc<User>>>,
    restricted: AtomicU64,
}

impl Default for AclState {
    fn default() -> AclState {
        AclState {
            current: RwLock::new(Arc::new(Users::new(None))),
            epoch: AtomicU64::new(0),
            file: RwLock::new(None),
            log: Mutex::new((0, VecDeque::new())),
            sessions: Mutex::default(),
            restricted: AtomicU64::new(0),
        }
    }
}

impl AclState {
    /// Records a denial (`denied`) or, with None, a failed AUTH, as ACL LOG shows them.
    pub fn log(&self, denied: Option<&Denied>, multi: bool, username: &str, client_info: String) {
        let (reason, object) = denied.map_or(("auth", "AUTH".to_string()), Denied::reason_object);
        let context = if multi { "multi" } else { "toplevel" };
        let now = strand_engine::clock::unix_ms();
        let mut guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let (next_id, entries) = &mut *guard;
        let same = entries.iter_mut().find(|e| {
            e.reason == reason && e.context == context && e.object == object && e.username == username && now - e.updated_ms < 60_000
        });
        if let Some(e) = same {
            e.count += 1;
            e.updated_ms = now;
            e.client_info = client_info;
            return;
        }
        entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username: username.to_string(),
            client_info,
            entry_id: *next_id,
            created_ms: now,
            updated_ms: now,
        });
        *next_id += 1;
        entries.truncate(LOG_MAX);
    }

    /// Notes the user of client `id` (None: the connection closed), for [`AclState::session_user`].
    pub fn note_session(&self, id: u64, user: Option<&Arc<User>>) {
        let restricted = user.filter(|u| !u.unrestricted());
        if restricted.is_none() && self.restricted.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match restricted {
            Some(u) => {
                map.insert(id, u.clone());
            }
            None => {
                map.remove(&id);
            }
        }
        self.restricted.store(map.len() as u64, Ordering::Release);
    }

    /// The user of client `id` if it is restricted (None: it may run anything).
    pub fn session_user(&self, id: u64) -> Option<Arc<User>> {
        if self.restricted.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// The newest `count` ACL LOG entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).1.iter().take(count).cloned().collect()
    }

    /// ACL LOG RESET.
    pub fn log_reset(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).1.clear();
    }

    /// The current users.
    pub fn users(&self) -> Arc<Users> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The epoch: changes whenever the users do.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Replaces the users and the ACL file path (at start-up).
    pub fn install(&self, users: Users, file: Option<PathBuf>) {
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = file;
        self.update(|u| {
            *u = users;
            Ok(())
        })
        .unwrap_or(());
    }

    /// The ACL file, if one was configured.
    pub fn file(&self) -> Option<PathBuf> {
        self.file.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the users with `f` on a copy; installs it if `f` succeeds.
    pub fn update<T>(&self, f: impl FnOnce(&mut Users) -> Result<T, String>) -> Result<T, String> {
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        let out = f(&mut next)?;
        *guard = Arc::new(next);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(out)
    }

    /// Reads the ACL file into a new table (nothing changes if it has an error).
    pub fn read_file(path: &Path, requirepass: Option<&str>) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading ACL file {}: {e}", path.display()))?;
        Users::parse_file(&text, path, requirepass)
    }

    /// Writes the users to the ACL file: a temporary file, synced, then renamed over it.
    pub fn save(&self) -> Result<(), String> {
        let Some(path) = self.file() else { return Err(NO_ACLFILE.into()) };
        let text = self.users().file_text();
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            format!(
                "ERR There was an error trying to save the ACLs. Please check the server logs for more information ({}: {e})",
                path.display()
            )
        })
    }
}

/// Redis's error for ACL LOAD and SAVE without an ACL file.
pub const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new("u");
        for r in rules {
            u.apply(r.as_bytes()).unwrap();
        }
        u
    }

    #[test]
    fn default_user_is_unrestricted() {
        let d = User::default_user(None);
        assert!(d.unrestricted() && d.open());
        assert_eq!(d.describe(), "user default on nopass ~* &* +@all");
        let p = User::default_user(Some("pw"));
        assert!(!p.open() && p.password_ok(b"pw") && !p.password_ok(b"px"));
    }

    #[test]
    fn rules_describe_like_redis() {
        let u = user(&["on", ">pw", "~cache:*", "+@string", "-set", "&ch*"]);
        assert_eq!(
            u.describe(),
            "user u on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~cache:* resetchannels &ch* -@all +@string -set"
        );
        assert_eq!(user(&["+@string", "+get"]).describe_commands(), "-@all +@string");
        assert_eq!(user(&["+get", "+set", "-get"]).describe_commands(), "-@all +set");
        assert_eq!(user(&["+@string", "-get", "+get"]).describe_commands(), "-@all +@string");
        assert_eq!(user(&["+get", "-@string"]).describe_commands(), "-@all");
        assert_eq!(user(&["+@read", "-@write"]).describe_commands(), "-@all +@read");
        assert_eq!(user(&["+@all", "-@string", "+get"]).describe_commands(), "+@all -@string +get");
        assert_eq!(user(&["+@all", "-get"]).describe_commands(), "+@all -get");
        assert_eq!(user(&["%R~r:*", "%W~w:*", "%RW~x"]).describe_keys(), "%R~r:* %W~w:* ~x");
        assert_eq!(user(&["~a", "~b", "resetkeys", "~c"]).describe_keys(), "~c");
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new("u");
        assert_eq!(u.apply(b"+nosuch").unwrap_err(), "Unknown command or category name in ACL");
        assert_eq!(u.apply(b"+@nosuch").unwrap_err(), "Unknown command or category name in ACL");
        assert_eq!(u.apply(b"bar").unwrap_err(), "Syntax error");
        assert_eq!(u.apply(b"%X~a").unwrap_err(), "Syntax error");
        assert!(u.apply(b"#abc").unwrap_err().contains("exactly 64 characters"));
        assert!(u.apply(b"<pw").unwrap_err().contains("does not exist"));
        u.apply(b"allkeys").unwrap();
        assert!(u.apply(b"~x").unwrap_err().starts_with("Adding a pattern after the * pattern"));
    }

    #[test]
    fn command_and_key_checks() {
        let u = user(&["on", "nopass", "~app:*", "%R~ro:*", "+get", "+set"]);
        let (get_id, get) = table::id_by_name("get").unwrap();
        let (set_id, set) = table::id_by_name("set").unwrap();
        let (del_id, del) = table::id_by_name("del").unwrap();
        assert!(u.check(get_id, get, &[b"get", b"app:1"]).is_none());
        assert_eq!(u.check(get_id, get, &[b"get", b"other"]).unwrap().message("u"), "NOPERM No permissions to access a key");
        assert!(u.check(get_id, get, &[b"get", b"ro:1"]).is_none());
        assert!(u.check(set_id, set, &[b"set", b"ro:1", b"v"]).is_some());
        assert_eq!(
            u.check(del_id, del, &[b"del", b"app:1"]).unwrap().message("u"),
            "NOPERM User u has no permissions to run the 'del' command"
        );
        assert!(!u.unrestricted());
        let p = user(&["+@all", "allkeys", "&news:*"]);
        let (pub_id, publish) = table::id_by_name("publish").unwrap();
        let (psub_id, psub) = table::id_by_name("psubscribe").unwrap();
        assert!(p.check(pub_id, publish, &[b"publish", b"news:1", b"m"]).is_none());
        assert_eq!(p.check(pub_id, publish, &[b"publish", b"x", b"m"]).unwrap(), Denied::Channel(b"x".to_vec()));
        assert!(p.check(psub_id, psub, &[b"psubscribe", b"news:*"]).is_none());
        assert!(p.check(psub_id, psub, &[b"psubscribe", b"news:1*"]).is_some());
    }

    #[test]
    fn passwords_are_hashed_and_removable() {
        let mut u = user(&[">a", ">b"]);
        assert!(u.password_ok(b"a") && u.password_ok(b"b") && !u.password_ok(b"c"));
        u.apply(b"<a").unwrap();
        assert!(!u.password_ok(b"a"));
        assert!(!u.describe().contains('a') || u.describe().contains('#'));
    }

    #[test]
    fn file_round_trip() {
        let mut users = Users::new(None);
        users.insert(user(&["on", ">pw", "~k:*", "+@read"]));
        let text = users.file_text();
        let back = Users::parse_file(&text, Path::new("users.acl"), None).unwrap();
        assert_eq!(back.file_text(), text);
        let err = Users::parse_file("user x bogus\n", Path::new("f.acl"), None).unwrap_err();
        assert!(err.starts_with("f.acl:1: "), "{err}");
    }

    #[test]
    fn every_category_in_the_table_is_known() {
        for c in table::all() {
            for cat in c.categories {
                assert!(category(cat.trim_start_matches('@')).is_some(), "{}: unknown category {cat}", c.name);
            }
        }
    }
}
