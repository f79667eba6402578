//! Configuration: command-line flags, the TOML file, and CONFIG GET/SET.
//!
//! Every setting is a flag and a key of the `--config` TOML file (same
//! names, `-` or `_`); flags win over the file. At run time, `CONFIG GET`
//! and `CONFIG SET` see the parameters under Redis's names. Redis's
//! encoding-tuning parameters (`hash-max-listpack-entries` and the like) are
//! accepted and remembered so existing configs and tools keep working, but
//! have no effect: strand's structures are not tuned that way. The memory
//! settings (`maxmemory`, `maxmemory-policy` ...) reach every shard's
//! keyspace through [`Config::memory_limits`], at start and on CONFIG SET.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;
use strand_engine::keyspace::evict::{Limits, Policy};
use strand_engine::keyspace::MAX_STRING_LEN;
use strand_engine::log::FsyncPolicy;

/// Command-line flags. Each may also be set in the `--config` TOML file.
#[derive(Parser, Debug, Default, Deserialize, Clone)]
#[command(name = "strand", version, about = "strand: a cache, queues, streams, time series and search behind the Redis protocol")]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Flags {
    /// TCP port to listen on (every shard accepts on it, SO_REUSEPORT); 0: no plaintext port,
    /// only --tls-port [default: 6379]
    #[arg(long)]
    pub port: Option<u16>,
    /// TLS port, beside --port (needs --tls-cert-file and --tls-key-file); 0: off [default: 0]
    #[arg(long)]
    pub tls_port: Option<u16>,
    /// The server's certificate chain, PEM, leaf first; read at start (no reload)
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1); read at start (no reload)
    #[arg(long)]
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates, PEM, that client certificates must chain to (for --tls-auth-clients)
    #[arg(long)]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Client certificates on the TLS port: no, yes (required) or optional (checked when shown);
    /// needs --tls-ca-cert-file unless no [default: yes with --tls-ca-cert-file, else no]
    #[arg(long)]
    pub tls_auth_clients: Option<String>,
    /// Address to bind [default: 127.0.0.1]. Anything else needs a password (--requirepass or
    /// the ACL file's default user) unless --protected-mode no
    #[arg(long)]
    pub bind: Option<String>,
    /// yes: refuse to start on a non-loopback address while the default user needs no password;
    /// no: allow it (anyone who can reach the port can run every command) [default: yes]
    #[arg(long)]
    pub protected_mode: Option<String>,
    /// ACL file with one `user <name> <rules>...` line per user, read at start and by ACL LOAD,
    /// written by ACL SAVE; it must exist (it may be empty)
    #[arg(long)]
    pub aclfile: Option<PathBuf>,
    /// DEBUG (fault injection for tests): no, yes, or local (only from loopback connections) [default: no]
    #[arg(long)]
    pub enable_debug_command: Option<String>,
    /// Data directory; each shard keeps its log in DIR/shard-NNN [default: ./strand-data]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Number of shards, one thread pinned per core [default: online CPUs]
    #[arg(long)]
    pub shards: Option<usize>,
    /// When the log syncs: always (reply after fdatasync), everysec, no [default: everysec]
    #[arg(long)]
    pub appendfsync: Option<String>,
    /// on: keep the per-core log; off: a pure in-memory cache [default: on]
    #[arg(long)]
    pub persistence: Option<String>,
    /// Password clients must give with AUTH
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Maximum number of connected clients [default: 10000]
    #[arg(long)]
    pub maxclients: Option<usize>,
    /// Largest bulk string a client may send, in bytes [default: 512mb]
    #[arg(long)]
    pub proto_max_bulk_len: Option<String>,
    /// Largest unparsed request a client may have buffered [default: 1gb]
    #[arg(long)]
    pub client_query_buffer_limit: Option<String>,
    /// Output buffer limits, Redis's `<class> <hard> <soft> <soft-seconds>` groups for the classes
    /// normal, pubsub and replica, e.g. "pubsub 64mb 16mb 60"; classes not named keep their
    /// defaults [default: normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60]
    #[arg(long)]
    pub client_output_buffer_limit: Option<String>,
    /// Close a client idle for more than this many seconds (not blocked clients or
    /// subscribers); 0: never [default: 0]
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Size of each log segment file [default: 256mb]
    #[arg(long)]
    pub segment_size: Option<String>,
    /// Move a connection to the shard that owns the keys it keeps using: yes or no [default: yes]
    #[arg(long)]
    pub migrate_connections: Option<String>,
    /// Microseconds an idle shard keeps polling before it sleeps. Above 0 a message
    /// or request that arrives within the window finds the shard awake (no wake-up
    /// system call or interrupt), at the cost of that much busy CPU per idle gap:
    /// for cores given to strand alone, not for machines shared with other work
    /// [default: 0]
    #[arg(long)]
    pub spin_before_park: Option<u64>,
    /// Log level: error, warn, info, debug, trace [default: info]
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Keyspace notifications, as Redis's notify-keyspace-events (e.g. KEA) [default: none]
    #[arg(long)]
    pub notify_keyspace_events: Option<String>,
    /// Milliseconds a Lua script may run before other shards answer BUSY for its shard
    /// and SCRIPT KILL may stop it (alias: lua-time-limit) [default: 5000]
    #[arg(long, alias = "lua-time-limit")]
    #[serde(alias = "lua-time-limit")]
    pub busy_reply_threshold: Option<u64>,
    /// Memory budget for the dataset, split evenly over the shards (64mb, 1gb ...; 0: no limit) [default: 0]
    #[arg(long)]
    pub maxmemory: Option<String>,
    /// What to do over maxmemory: noeviction, allkeys-lru, allkeys-lfu, allkeys-random,
    /// volatile-lru, volatile-lfu, volatile-random, volatile-ttl [default: noeviction]
    #[arg(long)]
    pub maxmemory_policy: Option<String>,
    /// Keys sampled per database per eviction round, 1..=64 [default: 5]
    #[arg(long)]
    pub maxmemory_samples: Option<usize>,
    /// LFU counter growth: higher makes the counter grow slower [default: 10]
    #[arg(long)]
    pub lfu_log_factor: Option<u32>,
    /// Minutes of idleness per LFU counter decrement (0: never decays) [default: 1]
    #[arg(long)]
    pub lfu_decay_time: Option<u32>,
    /// Seconds between checkpoints when keys changed; 0: only SAVE, BGSAVE, SHUTDOWN and log growth [default: 3600]
    #[arg(long)]
    pub checkpoint_interval: Option<u64>,
    /// Checkpoint when the live fraction of the log (last checkpoint / (checkpoint + log written since))
    /// falls below this; 0 turns growth-triggered checkpoints off [default: 0.5]
    #[arg(long)]
    pub compaction_threshold: Option<f64>,
    /// Most bytes per second a background checkpoint writes; 0: no limit [default: 256mb]
    #[arg(long)]
    pub compaction_rate: Option<String>,
    /// zstd level of checkpoint chunks, 1 (fast) to 19 (small); 0 stores them uncompressed [default: 1]
    #[arg(long)]
    pub checkpoint_compression: Option<i32>,
    /// Port for Prometheus metrics over HTTP at /metrics, on the --bind address; 0: off [default: 0]
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// TOML file with any of these settings (same names)
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port (0: no plaintext listener).
    pub port: u16,
    /// TLS port (0: no TLS listener).
    pub tls_port: u16,
    /// The TLS files and client-certificate policy, when `tls_port` is set.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Bind address.
    pub bind: String,
    /// Data directory.
    pub dir: PathBuf,
    /// Shard count.
    pub shards: usize,
    /// Sync policy.
    pub appendfsync: FsyncPolicy,
    /// Whether the log is kept.
    pub persistence: bool,
    /// AUTH password.
    pub requirepass: Option<String>,
    /// protected-mode: refuse a public bind while the default user needs no password.
    pub protected_mode: bool,
    /// The ACL file, if any.
    pub aclfile: Option<PathBuf>,
    /// enable-debug-command: who may run DEBUG.
    pub debug_command: DebugAccess,
    /// Client limit.
    pub maxclients: usize,
    /// proto-max-bulk-len.
    pub proto_max_bulk_len: usize,
    /// client-query-buffer-limit.
    pub client_query_buffer_limit: usize,
    /// client-output-buffer-limit, per class.
    pub client_output_buffer_limit: crate::limits::ObufLimits,
    /// timeout: idle seconds before a client is closed (0: never).
    pub timeout: u64,
    /// Segment size in bytes.
    pub segment_size: u64,
    /// Whether connections move to the shard that owns their keys.
    pub migrate_connections: bool,
    /// Microseconds an idle shard polls before it sleeps (0: sleeps at once).
    pub spin_before_park: u64,
    /// Log level.
    pub loglevel: String,
    /// notify-keyspace-events, as [`crate::notify`] flags.
    pub notify: u32,
    /// busy-reply-threshold (alias lua-time-limit), in milliseconds.
    pub busy_reply_threshold: u64,
    /// maxmemory in bytes, for all shards together (0: no limit).
    pub maxmemory: u64,
    /// maxmemory-policy.
    pub maxmemory_policy: Policy,
    /// maxmemory-samples.
    pub maxmemory_samples: usize,
    /// lfu-log-factor.
    pub lfu_log_factor: u32,
    /// lfu-decay-time, in minutes.
    pub lfu_decay_time: u32,
    /// checkpoint-interval, in seconds (0: off).
    pub checkpoint_interval: u64,
    /// compaction-threshold: the live fraction of the log under which a checkpoint is taken.
    pub compaction_threshold: f64,
    /// compaction-rate, in bytes per second (0: no limit).
    pub compaction_rate: u64,
    /// checkpoint-compression: the zstd level of checkpoint chunks (0: off).
    pub checkpoint_compression: i32,
    /// metrics-port (0: no metrics listener).
    pub metrics_port: u16,
    /// slowlog-log-slower-than, in microseconds (negative: off, 0: every command).
    pub slowlog_log_slower_than: i64,
    /// slowlog-max-len: entries the slow log keeps.
    pub slowlog_max_len: usize,
    /// latency-monitor-threshold, in milliseconds (0: off).
    pub latency_monitor_threshold: u64,
    /// The config file, if any.
    pub config_file: Option<PathBuf>,
    /// Parameters accepted for compatibility that have no effect.
    pub inert: BTreeMap<String, String>,
}

/// Parses Redis memory units: `100`, `64kb`, `1mb`, `2gb`, `1k` (1000), `1m`, `1g`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let units: [(&str, u64); 6] = [("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1000), ("m", 1_000_000), ("g", 1_000_000_000)];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            return num.parse::<u64>().ok()?.checked_mul(mul);
        }
    }
    lower.parse().ok()
}

impl Config {
    /// Builds the configuration from flags and the optional file.
    pub fn load(flags: Flags) -> Result<Config, String> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
                // Accept `proto_max_bulk_len` as well as `proto-max-bulk-len`; values stay as written.
                let table: toml::Table = table.into_iter().map(|(k, v)| (k.replace('_', "-"), v)).collect();
                toml::Value::Table(table).try_into::<Flags>().map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Flags::default(),
        };
        macro_rules! pick {
            ($f:ident) => {
                flags.$f.clone().or(file.$f.clone())
            };
        }
        let mem = |name: &str, v: Option<String>, default: u64| -> Result<u64, String> {
            match v {
                Some(s) => parse_memory(&s).ok_or_else(|| format!("invalid {name} '{s}': expected bytes with an optional kb/mb/gb unit")),
                None => Ok(default),
            }
        };
        let appendfsync = match pick!(appendfsync) {
            Some(s) => FsyncPolicy::parse(&s).ok_or_else(|| format!("invalid appendfsync '{s}': expected always, everysec or no"))?,
            None => FsyncPolicy::EverySec,
        };
        let persistence = match pick!(persistence).as_deref() {
            None | Some("on") | Some("yes") => true,
            Some("off") | Some("no") => false,
            Some(other) => return Err(format!("invalid persistence '{other}': expected on or off")),
        };
        let shards = pick!(shards).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if shards == 0 || shards > 255 {
            return Err(format!("invalid shards {shards}: expected 1..=255"));
        }
        let segment_size = mem("segment-size", pick!(segment_size), 256 << 20)?;
        if segment_size < strand_engine::log::segment::MIN_SEGMENT_SIZE || segment_size % 4096 != 0 {
            return Err(format!("invalid segment-size {segment_size}: expected a multiple of 4096, at least 64kb"));
        }
        let tls_port = pick!(tls_port).unwrap_or(0);
        let tls = tls_settings(
            tls_port,
            [pick!(tls_cert_file), pick!(tls_key_file), pick!(tls_ca_cert_file)],
            pick!(tls_auth_clients).as_deref(),
        )?;
        let cfg = Config {
            port: pick!(port).unwrap_or(6379),
            tls_port,
            tls,
            bind: pick!(bind).unwrap_or_else(|| "127.0.0.1".into()),
            dir: pick!(dir).unwrap_or_else(|| PathBuf::from("./strand-data")),
            shards,
            appendfsync,
            persistence,
            requirepass: pick!(requirepass).filter(|p| !p.is_empty()),
            protected_mode: match pick!(protected_mode).as_deref() {
                None | Some("yes") => true,
                Some("no") => false,
                Some(other) => return Err(format!("invalid protected-mode '{other}': expected yes or no")),
            },
            aclfile: pick!(aclfile),
            debug_command: DebugAccess::parse(pick!(enable_debug_command).as_deref().unwrap_or("no"))?,
            maxclients: pick!(maxclients).unwrap_or(10_000),
            proto_max_bulk_len: match mem("proto-max-bulk-len", pick!(proto_max_bulk_len), MAX_STRING_LEN as u64)? {
                v if v < 1024 || v > MAX_STRING_LEN as u64 => return Err(format!("invalid proto-max-bulk-len {v}: expected 1kb to 512mb")),
                v => v as usize,
            },
            client_query_buffer_limit: mem("client-query-buffer-limit", pick!(client_query_buffer_limit), 1 << 30)? as usize,
            client_output_buffer_limit: output_limits(pick!(client_output_buffer_limit))?,
            timeout: match pick!(timeout) {
                Some(t) if t > i32::MAX as u64 => return Err(format!("invalid timeout {t}: expected 0 to {}", i32::MAX)),
                t => t.unwrap_or(0),
            },
            segment_size,
            migrate_connections: match pick!(migrate_connections).as_deref() {
                None | Some("yes") | Some("on") => true,
                Some("no") | Some("off") => false,
                Some(other) => return Err(format!("invalid migrate-connections '{other}': expected yes or no")),
            },
            spin_before_park: match pick!(spin_before_park) {
                Some(us) if us > 1_000_000 => return Err(format!("invalid spin-before-park {us}: expected 0 to 1000000 microseconds")),
                us => us.unwrap_or(0),
            },
            loglevel: pick!(loglevel).unwrap_or_else(|| "info".into()),
            notify: match pick!(notify_keyspace_events) {
                Some(s) => crate::notify::parse_flags(&s)
                    .ok_or_else(|| format!("invalid notify-keyspace-events '{s}': {}", crate::notify::BAD_FLAGS))?,
                None => 0,
            },
            busy_reply_threshold: pick!(busy_reply_threshold).unwrap_or(5000),
            maxmemory: mem("maxmemory", pick!(maxmemory), 0)?,
            maxmemory_policy: match pick!(maxmemory_policy) {
                Some(s) => match Policy::parse(&s) {
                    Some(Policy::Tiered) if !persistence => return Err(format!("invalid maxmemory-policy '{s}': {TIERED_NEEDS_LOG}")),
                    Some(p) => p,
                    None => return Err(format!("invalid maxmemory-policy '{s}': expected one of {}", policy_names())),
                },
                // Values that do not fit stay on disk, when there is a disk.
                None if persistence => Policy::Tiered,
                None => Policy::NoEviction,
            },
            maxmemory_samples: match pick!(maxmemory_samples) {
                Some(n) if !(1..=64).contains(&n) => return Err(format!("invalid maxmemory-samples {n}: expected 1..=64")),
                n => n.unwrap_or(5),
            },
            lfu_log_factor: pick!(lfu_log_factor).unwrap_or(10),
            lfu_decay_time: pick!(lfu_decay_time).unwrap_or(1),
            checkpoint_interval: pick!(checkpoint_interval).unwrap_or(3600),
            compaction_threshold: threshold(pick!(compaction_threshold).unwrap_or(0.5))?,
            compaction_rate: mem("compaction-rate", pick!(compaction_rate), 256 << 20)?,
            checkpoint_compression: zstd_level(pick!(checkpoint_compression).unwrap_or(1))?,
            metrics_port: pick!(metrics_port).unwrap_or(0),
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            config_file: flags.config.clone(),
            inert: inert_defaults(),
        };
        if cfg.metrics_port != 0 && (cfg.metrics_port == cfg.port || cfg.metrics_port == cfg.tls_port) {
            return Err(format!("invalid metrics-port {}: it must differ from port and tls-port", cfg.metrics_port));
        }
        if cfg.tls_port != 0 && cfg.tls_port == cfg.port {
            return Err(format!("invalid tls-port {}: it must differ from port", cfg.tls_port));
        }
        if cfg.port == 0 && cfg.tls_port == 0 {
            return Err("port 0 turns the plaintext port off; then set --tls-port, or nothing would listen".into());
        }
        Ok(cfg)
    }

    /// Protected mode: on a non-loopback address, the default user must need a
    /// password (from --requirepass or the ACL file) or be off, unless
    /// `--protected-mode no`. `default_open` says whether it needs none.
    pub fn check_protected(&self, default_open: bool) -> Result<(), String> {
        if self.protected_mode && default_open && !is_loopback(&self.bind) {
            return Err(format!(
                "refusing to listen on {}: protected mode is on and the default user has no password, so anyone who can reach \
                 the port could read and write every key. Set a password with --requirepass (or a `user default on #<sha256> ...` \
                 line in the --aclfile), bind 127.0.0.1, or, if a firewall guards the port, pass --protected-mode no",
                self.bind
            ));
        }
        Ok(())
    }

    /// Every CONFIG parameter and its current value.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = vec![
            ("port".into(), self.port.to_string()),
            ("tls-port".into(), self.tls_port.to_string()),
            ("tls-cert-file".into(), self.tls.as_ref().map(|t| t.cert_file.display().to_string()).unwrap_or_default()),
            ("tls-key-file".into(), self.tls.as_ref().map(|t| t.key_file.display().to_string()).unwrap_or_default()),
            (
                "tls-ca-cert-file".into(),
                self.tls.as_ref().and_then(|t| t.ca_cert_file.as_ref()).map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            ("tls-auth-clients".into(), self.tls.as_ref().map_or("no", |t| t.auth_clients.name()).into()),
            ("bind".into(), self.bind.clone()),
            ("dir".into(), self.dir.display().to_string()),
            ("shards".into(), self.shards.to_string()),
            ("appendfsync".into(), self.appendfsync.name().into()),
            ("appendonly".into(), if self.persistence { "yes" } else { "no" }.into()),
            ("persistence".into(), if self.persistence { "on" } else { "off" }.into()),
            ("requirepass".into(), self.requirepass.clone().unwrap_or_default()),
            ("protected-mode".into(), if self.protected_mode { "yes" } else { "no" }.into()),
            ("aclfile".into(), self.aclfile.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
            ("enable-debug-command".into(), self.debug_command.name().into()),
            ("maxclients".into(), self.maxclients.to_string()),
            ("proto-max-bulk-len".into(), self.proto_max_bulk_len.to_string()),
            ("client-query-buffer-limit".into(), self.client_query_buffer_limit.to_string()),
            ("client-output-buffer-limit".into(), self.client_output_buffer_limit.format()),
            ("timeout".into(), self.timeout.to_string()),
            ("segment-size".into(), self.segment_size.to_string()),
            ("loglevel".into(), self.loglevel.clone()),
            ("notify-keyspace-events".into(), crate::notify::format_flags(self.notify)),
            ("migrate-connections".into(), if self.migrate_connections { "yes" } else { "no" }.into()),
            ("spin-before-park".into(), self.spin_before_park.to_string()),
            ("busy-reply-threshold".into(), self.busy_reply_threshold.to_string()),
            ("lua-time-limit".into(), self.busy_reply_threshold.to_string()),
            ("databases".into(), "16".into()),
            ("save".into(), String::new()),
            ("checkpoint-interval".into(), self.checkpoint_interval.to_string()),
            ("compaction-threshold".into(), self.compaction_threshold.to_string()),
            ("compaction-rate".into(), self.compaction_rate.to_string()),
            ("checkpoint-compression".into(), self.checkpoint_compression.to_string()),
            ("maxmemory".into(), self.maxmemory.to_string()),
            ("maxmemory-policy".into(), self.maxmemory_policy.name().into()),
            ("maxmemory-samples".into(), self.maxmemory_samples.to_string()),
            ("lfu-log-factor".into(), self.lfu_log_factor.to_string()),
            ("lfu-decay-time".into(), self.lfu_decay_time.to_string()),
            ("metrics-port".into(), self.metrics_port.to_string()),
            ("slowlog-log-slower-than".into(), self.slowlog_log_slower_than.to_string()),
            ("slowlog-max-len".into(), self.slowlog_max_len.to_string()),
            ("latency-monitor-threshold".into(), self.latency_monitor_threshold.to_string()),
        ];
        out.extend(self.inert.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.sort();
        out
    }

    /// CONFIG SET of one parameter. Parameters fixed at start-up are refused.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
        match name {
            "requirepass" => self.requirepass = (!value.is_empty()).then(|| value.to_string()),
            "maxclients" => self.maxclients = value.parse().map_err(|_| invalid("argument couldn't be parsed into an integer"))?,
            "proto-max-bulk-len" => {
                let v = parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?;
                if v < 1024 {
                    return Err(invalid("argument must be at least 1kb"));
                }
                if v > MAX_STRING_LEN as u64 {
                    return Err(invalid("argument must be at most 512mb, strand's longest string"));
                }
                self.proto_max_bulk_len = v as usize;
            }
            "client-query-buffer-limit" => {
                let v = parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?;
                if v < 1024 * 1024 {
                    return Err(invalid("argument must be at least 1mb"));
                }
                self.client_query_buffer_limit = v as usize;
            }
            "client-output-buffer-limit" => self.client_output_buffer_limit.apply(value).map_err(invalid)?,
            "timeout" => self.timeout = int_in(value, 0, i32::MAX as i64).map_err(|e| invalid(&e))? as u64,
            "loglevel" => match value {
                "debug" | "verbose" | "notice" | "warning" | "info" | "warn" | "error" | "trace" => self.loglevel = value.into(),
                _ => return Err(invalid("argument(s) must be one of the following: debug, verbose, notice, warning, nothing")),
            },
            "save" => {}
            "notify-keyspace-events" => self.notify = crate::notify::parse_flags(value).ok_or_else(|| invalid(crate::notify::BAD_FLAGS))?,
            "busy-reply-threshold" | "lua-time-limit" => {
                let v: i64 = value.parse().map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
                if v < 0 {
                    return Err(invalid("argument must be between 0 and 9223372036854775807 inclusive"));
                }
                self.busy_reply_threshold = v as u64;
            }
            "migrate-connections" => match value {
                "yes" => self.migrate_connections = true,
                "no" => self.migrate_connections = false,
                _ => return Err(invalid("argument must be 'yes' or 'no'")),
            },
            "checkpoint-interval" => {
                self.checkpoint_interval = value.parse().map_err(|_| invalid("argument couldn't be parsed into an integer"))?
            }
            "compaction-threshold" => {
                let v: f64 = value.parse().map_err(|_| invalid("argument couldn't be parsed into a number"))?;
                self.compaction_threshold = threshold(v).map_err(|e| invalid(&e))?;
            }
            "compaction-rate" => self.compaction_rate = parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?,
            "checkpoint-compression" => {
                let v: i32 = value.parse().map_err(|_| invalid("argument couldn't be parsed into an integer"))?;
                self.checkpoint_compression = zstd_level(v).map_err(|e| invalid(&e))?;
            }
            "maxmemory" => self.maxmemory = parse_memory(value).ok_or_else(|| invalid("argument must be a memory value"))?,
            "maxmemory-policy" => {
                let policy = Policy::parse(value)
                    .ok_or_else(|| invalid(&format!("argument(s) must be one of the following: {}", policy_names())))?;
                if policy == Policy::Tiered && !self.persistence {
                    return Err(invalid(TIERED_NEEDS_LOG));
                }
                self.maxmemory_policy = policy;
            }
            "maxmemory-samples" => self.maxmemory_samples = int_in(value, 1, 64).map_err(|e| invalid(&e))? as usize,
            "lfu-log-factor" => self.lfu_log_factor = int_in(value, 0, i32::MAX as i64).map_err(|e| invalid(&e))? as u32,
            "lfu-decay-time" => self.lfu_decay_time = int_in(value, 0, i32::MAX as i64).map_err(|e| invalid(&e))? as u32,
            "slowlog-log-slower-than" => self.slowlog_log_slower_than = int_in(value, -1, i64::MAX).map_err(|e| invalid(&e))?,
            "slowlog-max-len" => self.slowlog_max_len = int_in(value, 0, i64::MAX).map_err(|e| invalid(&e))? as usize,
            "latency-monitor-threshold" => self.latency_monitor_threshold = int_in(value, 0, i64::MAX).map_err(|e| invalid(&e))? as u64,
            "port"
            | "tls-port"
            | "tls-cert-file"
            | "tls-key-file"
            | "tls-ca-cert-file"
            | "tls-auth-clients"
            | "bind"
            | "dir"
            | "shards"
            | "appendfsync"
            | "appendonly"
            | "persistence"
            | "segment-size"
            | "spin-before-park"
            | "databases"
            | "metrics-port"
            | "protected-mode"
            | "aclfile"
            | "enable-debug-command" => {
                return Err(invalid("can't set immutable config"));
            }
            other if self.inert.contains_key(other) => {
                self.inert.insert(other.to_string(), value.to_string());
            }
            _ => return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")),
        }
        Ok(())
    }
}

impl Config {
    /// One shard's memory limits: its even share of maxmemory and the eviction settings.
    pub fn memory_limits(&self, shards: usize) -> Limits {
        let budget = if self.maxmemory == 0 { 0 } else { (self.maxmemory / shards.max(1) as u64).max(1) as usize };
        Limits {
            budget,
            policy: self.maxmemory_policy,
            samples: self.maxmemory_samples,
            lfu_log_factor: self.lfu_log_factor,
            lfu_decay_time: self.lfu_decay_time,
        }
    }
}

/// The TLS settings when `tls_port` is set: cert and key are required; client
/// certificates are required by default when a CA is given (as Redis), and
/// asking for them without a CA is an error. The files are read later, by
/// [`crate::tls::acceptor`].
fn tls_settings(
    tls_port: u16,
    [cert, key, ca]: [Option<PathBuf>; 3],
    auth: Option<&str>,
) -> Result<Option<crate::tls::TlsSettings>, String> {
    if tls_port == 0 {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (cert, key) else {
        return Err(format!("tls-port {tls_port} needs --tls-cert-file and --tls-key-file"));
    };
    let auth_clients = match (auth, &ca) {
        (Some(a), _) => crate::tls::ClientAuth::parse(a)?,
        (None, Some(_)) => crate::tls::ClientAuth::Yes,
        (None, None) => crate::tls::ClientAuth::No,
    };
    if auth_clients != crate::tls::ClientAuth::No && ca.is_none() {
        return Err(format!("tls-auth-clients {} needs --tls-ca-cert-file to check client certificates with", auth_clients.name()));
    }
    Ok(Some(crate::tls::TlsSettings { cert_file, key_file, ca_cert_file: ca, auth_clients }))
}

/// `client-output-buffer-limit` from a flag or the file: Redis's defaults, changed by the groups given.
fn output_limits(value: Option<String>) -> Result<crate::limits::ObufLimits, String> {
    let mut limits = crate::limits::ObufLimits::default();
    if let Some(v) = value {
        limits.apply(&v).map_err(|e| format!("invalid client-output-buffer-limit '{v}': {e}"))?;
    }
    Ok(limits)
}

/// The eviction policies, as Redis lists them in its CONFIG SET error.
/// Why `tiered` is refused with `--persistence off`.
const TIERED_NEEDS_LOG: &str = "tiered keeps cold values on disk, and needs persistence on";

fn policy_names() -> String {
    Policy::names().collect::<Vec<_>>().join(", ")
}

/// An integer CONFIG SET argument in `min..=max`, with Redis's messages.
fn int_in(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let v: i64 = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if !(min..=max).contains(&v) {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(v)
}

/// Checks a compaction threshold: a fraction from 0 (off) to just under 1.
fn threshold(v: f64) -> Result<f64, String> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("invalid compaction-threshold {v}: expected a fraction from 0 (off) up to, not including, 1"))
    }
}

fn zstd_level(v: i32) -> Result<i32, String> {
    if (0..=19).contains(&v) {
        Ok(v)
    } else {
        Err(format!("invalid checkpoint-compression {v}: expected a zstd level from 1 to 19, or 0 for none"))
    }
}

/// Who may run DEBUG (Redis's `enable-debug-command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugAccess {
    /// Nobody.
    No,
    /// Every client.
    Yes,
    /// Clients on a loopback address.
    Local,
}

impl DebugAccess {
    fn parse(s: &str) -> Result<DebugAccess, String> {
        match s.to_ascii_lowercase().as_str() {
            "no" => Ok(DebugAccess::No),
            "yes" => Ok(DebugAccess::Yes),
            "local" => Ok(DebugAccess::Local),
            other => Err(format!("invalid enable-debug-command '{other}': expected no, yes or local")),
        }
    }

    /// Redis's spelling.
    pub fn name(self) -> &'static str {
        match self {
            DebugAccess::No => "no",
            DebugAccess::Yes => "yes",
            DebugAccess::Local => "local",
        }
    }
}

fn is_loopback(bind: &str) -> bool {
    bind.split_whitespace().all(|a| a == "localhost" || a == "::1" || a.starts_with("127."))
}

/// Redis parameters accepted for compatibility; they change nothing in strand.
fn inert_defaults() -> BTreeMap<String, String> {
    [
        ("hash-max-listpack-entries", "128"),
        ("hash-max-listpack-value", "64"),
        ("hash-max-ziplist-entries", "128"),
        ("hash-max-ziplist-value", "64"),
        ("list-max-listpack-size", "-2"),
        ("list-max-ziplist-size", "-2"),
        ("list-compress-depth", "0"),
        ("set-max-intset-entries", "512"),
        ("set-max-listpack-entries", "128"),
        ("set-max-listpack-value", "64"),
        ("zset-max-listpack-entries", "128"),
        ("zset-max-listpack-value", "64"),
        ("zset-max-ziplist-entries", "128"),
        ("zset-max-ziplist-value", "64"),
        ("stream-node-max-bytes", "4096"),
        ("stream-node-max-entries", "100"),
        ("activerehashing", "yes"),
        ("hz", "10"),
        ("dynamic-hz", "yes"),
        ("lazyfree-lazy-eviction", "no"),
        ("lazyfree-lazy-expire", "no"),
        ("lazyfree-lazy-server-del", "no"),
        ("lazyfree-lazy-user-del", "no"),
        ("lazyfree-lazy-user-flush", "no"),
        ("tcp-keepalive", "300"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("64kb"), Some(65536));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn memory_settings_from_flags_and_config_set() {
        let flags = Flags { maxmemory: Some("64mb".into()), maxmemory_policy: Some("allkeys-lru".into()), ..Flags::default() };
        let mut cfg = Config::load(flags).unwrap();
        assert_eq!(cfg.maxmemory, 64 << 20);
        assert_eq!(cfg.memory_limits(2).budget, 32 << 20);
        assert_eq!(cfg.memory_limits(2).policy, Policy::AllKeysLru);
        cfg.set("maxmemory", "1gb").unwrap();
        cfg.set("maxmemory-policy", "volatile-ttl").unwrap();
        cfg.set("maxmemory-samples", "10").unwrap();
        assert_eq!(cfg.memory_limits(1), Limits { budget: 1 << 30, policy: Policy::VolatileTtl, samples: 10, ..Limits::default() });
        assert!(cfg.set("maxmemory-policy", "lru").unwrap_err().contains("must be one of the following: volatile-lru, volatile-lfu"));
        assert!(cfg.set("maxmemory-samples", "0").is_err());
        cfg.set("maxmemory", "0").unwrap();
        assert_eq!(cfg.memory_limits(4).budget, 0);
        let bad = Flags { maxmemory_policy: Some("lru".into()), ..Flags::default() };
        assert!(Config::load(bad).is_err());
    }

    #[test]
    fn timeout_and_output_limits_from_flags_file_and_config_set() {
        let flags = Flags { timeout: Some(30), client_output_buffer_limit: Some("pubsub 1mb 512kb 5".into()), ..Flags::default() };
        let mut cfg = Config::load(flags).unwrap();
        assert_eq!(cfg.timeout, 30);
        let get = |cfg: &Config, name: &str| cfg.params().into_iter().find(|(k, _)| k == name).map(|(_, v)| v);
        assert_eq!(get(&cfg, "client-output-buffer-limit").unwrap(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 5");
        cfg.set("timeout", "0").unwrap();
        assert_eq!(get(&cfg, "timeout").unwrap(), "0");
        let e = cfg.set("timeout", "-1").unwrap_err();
        assert_eq!(
            e,
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
        );
        cfg.set("client-output-buffer-limit", "slave 1mb 1mb 1 normal 10mb 5mb 10").unwrap();
        assert_eq!(cfg.client_output_buffer_limit.normal.hard, 10 << 20);
        let e = cfg.set("client-output-buffer-limit", "master 0 0 0").unwrap_err();
        assert!(e.ends_with("'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."), "{e}");
        assert!(Config::load(Flags { client_output_buffer_limit: Some("pubsub 1".into()), ..Flags::default() }).is_err());
        let file = std::env::temp_dir().join(format!("strand-limits-{}.toml", std::process::id()));
        std::fs::write(&file, "timeout = 7\nclient-output-buffer-limit = \"normal 1gb 0 0\"\n").unwrap();
        let loaded = Config::load(Flags { config: Some(file.clone()), ..Flags::default() });
        let _ = std::fs::remove_file(&file);
        let cfg = loaded.unwrap();
        assert_eq!((cfg.timeout, cfg.client_output_buffer_limit.normal.hard), (7, 1 << 30));
    }

    #[test]
    fn metrics_port_from_flag_and_file() {
        assert_eq!(Config::load(Flags::default()).unwrap().metrics_port, 0);
        let mut cfg = Config::load(Flags { metrics_port: Some(9121), ..Flags::default() }).unwrap();
        assert!(cfg.params().contains(&("metrics-port".into(), "9121".into())));
        assert!(cfg.set("metrics-port", "9122").unwrap_err().contains("immutable"));
        assert!(Config::load(Flags { metrics_port: Some(6379), ..Flags::default() }).is_err());
        let file = std::env::temp_dir().join(format!("strand-metrics-{}.toml", std::process::id()));
        std::fs::write(&file, "metrics-port = 9200\n").unwrap();
        let loaded = Config::load(Flags { config: Some(file.clone()), ..Flags::default() });
        let _ = std::fs::remove_file(&file);
        assert_eq!(loaded.unwrap().metrics_port, 9200);
    }

    #[test]
    fn refuses_public_bind_without_password() {
        let public = Config::load(Flags { bind: Some("0.0.0.0".into()), ..Flags::default() }).unwrap();
        assert!(public.check_protected(true).unwrap_err().contains("--protected-mode no"));
        assert!(public.check_protected(false).is_ok());
        let local = Config::load(Flags::default()).unwrap();
        assert!(local.check_protected(true).is_ok());
        let off = Flags { bind: Some("0.0.0.0".into()), protected_mode: Some("no".into()), ..Flags::default() };
        assert!(Config::load(off).unwrap().check_protected(true).is_ok());
        assert!(Config::load(Flags { protected_mode: Some("maybe".into()), ..Flags::default() }).is_err());
    }

    #[test]
    fn tls_settings_and_client_auth_default() {
        assert!(Config::load(Flags::default()).unwrap().tls.is_none());
        let tls = |extra: Flags| Config::load(Flags { tls_port: Some(6380), ..extra });
        assert!(tls(Flags::default()).unwrap_err().contains("--tls-cert-file"));
        let files = || Flags { tls_cert_file: Some("s.crt".into()), tls_key_file: Some("s.key".into()), ..Flags::default() };
        let cfg = tls(files()).unwrap();
        assert_eq!(cfg.tls.as_ref().unwrap().auth_clients, crate::tls::ClientAuth::No);
        assert!(cfg.params().contains(&("tls-port".into(), "6380".into())));
        assert!(cfg.clone().set("tls-port", "1").unwrap_err().contains("immutable"));
        let with_ca = tls(Flags { tls_ca_cert_file: Some("ca.crt".into()), ..files() }).unwrap();
        assert_eq!(with_ca.tls.unwrap().auth_clients, crate::tls::ClientAuth::Yes);
        assert!(tls(Flags { tls_auth_clients: Some("optional".into()), ..files() }).unwrap_err().contains("--tls-ca-cert-file"));
        assert!(tls(Flags { tls_auth_clients: Some("maybe".into()), ..files() }).is_err());
        assert!(tls(Flags { port: Some(6380), ..files() }).unwrap_err().contains("differ"));
        assert!(Config::load(Flags { port: Some(0), ..Flags::default() }).unwrap_err().contains("--tls-port"));
        assert_eq!(tls(Flags { port: Some(0), ..files() }).unwrap().port, 0);
    }

    #[test]
    fn protected_mode_and_aclfile_from_the_file() {
        let file = std::env::temp_dir().join(format!("strand-acl-{}.toml", std::process::id()));
        std::fs::write(&file, "protected-mode = \"no\"\naclfile = \"/etc/strand/users.acl\"\n").unwrap();
        let loaded = Config::load(Flags { config: Some(file.clone()), ..Flags::default() });
        let _ = std::fs::remove_file(&file);
        let cfg = loaded.unwrap();
        assert!(!cfg.protected_mode);
        assert!(cfg.params().contains(&("protected-mode".into(), "no".into())));
        assert!(cfg.params().contains(&("aclfile".into(), "/etc/strand/users.acl".into())));
    }
}
