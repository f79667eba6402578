//! A stream's settings: [XCFGSET](https://redis.io/docs/latest/commands/xcfgset/)
//! and the fields XINFO STREAM shows for them.
//!
//! - Idempotent production, as Redis 8.6: XADD's `IDMP pid iid` and
//!   `IDMPAUTO pid` options (parsed here, applied by [`super::streams::xadd`])
//!   and XCFGSET's `IDMP-DURATION` and `IDMP-MAXSIZE`. The state lives in
//!   the stream ([`strand_engine::keyspace::idmp`]) and is written by the
//!   stream's own records, so a retried XADD is recognised after a restart
//!   exactly as before it, within the producer's window.
//! - Retention, strand's own: `RETENTION-MS` and `RETENTION-BYTES` (see
//!   [`super::stream_retention`]).

use strand_engine::keyspace::idmp;
use strand_engine::keyspace::stream::{Retention, Stream, StreamChange};
use strand_engine::keyspace::{Change, Op};

use super::streams::{peek, reply};
use super::strings::{db8, int_arg, write};
use super::{err, Ctx};
use crate::reply::Reply;

/// XADD with both options, or one twice.
pub const TWICE: &str = "ERR IDMP/IDMPAUTO specified multiple times";
/// XADD with an explicit entry ID.
pub const AUTO_IDS_ONLY: &str = "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs";

/// Checks XADD's `IDMP pid iid` (`iid` given) or `IDMPAUTO pid`.
pub fn parse<'a>(auto: bool, pid: &'a [u8], iid: Option<&'a [u8]>) -> Result<(&'a [u8], Option<&'a [u8]>), Reply> {
    let name = if auto { "IDMPAUTO" } else { "IDMP" };
    if pid.is_empty() {
        return Err(Reply::error(format!("ERR {name} requires a non-empty producer ID")));
    }
    if iid.is_some_and(<[u8]>::is_empty) {
        return Err(Reply::error("ERR IDMP requires a non-empty idempotent ID"));
    }
    Ok((pid, iid))
}

/// XCFGSET key [IDMP-DURATION seconds] [IDMP-MAXSIZE count]
/// [RETENTION-MS ms] [RETENTION-BYTES bytes]: sets the stream's IDMP limits
/// (a change of either forgets every remembered iid) and its retention (0:
/// no limit; what it drops goes at once).
pub fn xcfgset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xcfgset_inner(ctx, args))
}

/// The options of one XCFGSET.
#[derive(Default)]
struct Settings {
    duration: Option<u32>,
    maxsize: Option<u32>,
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
}

impl Settings {
    fn parse(args: &[&[u8]]) -> Result<Settings, Reply> {
        if args.len() == 2 {
            return Err(Reply::error(
                "ERR At least one parameter must be specified: IDMP-DURATION, IDMP-MAXSIZE, RETENTION-MS or RETENTION-BYTES",
            ));
        }
        let mut s = Settings::default();
        let mut i = 2;
        while i < args.len() {
            let opt = String::from_utf8_lossy(args[i]).to_ascii_uppercase();
            if !["IDMP-DURATION", "IDMP-MAXSIZE", "RETENTION-MS", "RETENTION-BYTES"].contains(&opt.as_str()) {
                return Err(Reply::error(err::SYNTAX));
            }
            let n = int_arg(args.get(i + 1).ok_or_else(|| Reply::error(err::SYNTAX))?)?;
            let in_range = |range: std::ops::RangeInclusive<u32>| {
                u32::try_from(n)
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| Reply::error(format!("ERR {opt} must be between {} and {}", range.start(), range.end())))
            };
            let non_negative = || u64::try_from(n).map_err(|_| Reply::error(format!("ERR {opt} must be 0 (no limit) or more")));
            match opt.as_str() {
                "IDMP-DURATION" => s.duration = Some(in_range(idmp::DURATION_RANGE)?),
                "IDMP-MAXSIZE" => s.maxsize = Some(in_range(idmp::MAXSIZE_RANGE)?),
                "RETENTION-MS" => s.retention_ms = Some(non_negative()?),
                _ => s.retention_bytes = Some(non_negative()?),
            }
            i += 2;
        }
        Ok(s)
    }
}

fn xcfgset_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let set = Settings::parse(args)?;
    let key = args[1];
    let s = peek(ctx, key)?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
    let (d, m) = s.idmp.as_deref().map_or((idmp::DEFAULT_DURATION_S, idmp::DEFAULT_MAXSIZE), |m| (m.duration_s, m.maxsize));
    let r = s.retention;
    let mut changes = Vec::new();
    // Only options given change anything: retention alone keeps the iids.
    if set.duration.is_some() || set.maxsize.is_some() {
        changes.push(StreamChange::IdmpConfig { duration_s: set.duration.unwrap_or(d), maxsize: set.maxsize.unwrap_or(m) });
    }
    let retention = Retention { ms: set.retention_ms.unwrap_or(r.ms), bytes: set.retention_bytes.unwrap_or(r.bytes) };
    let trim = if set.retention_ms.is_some() || set.retention_bytes.is_some() {
        changes.push(StreamChange::Retention(retention));
        s.retention_trim_with(retention, ctx.now, 0)
    } else {
        0
    };
    if trim > 0 {
        changes.push(StreamChange::Trim { count: trim });
    }
    let db = db8(ctx);
    let mut ops: Vec<Op<'_>> = changes.into_iter().map(|c| Op::Coll { db, key, change: Change::Stream(c) }).collect();
    let op = if ops.len() == 1 { ops.remove(0) } else { Op::Group(ops) };
    write(ctx, op)?;
    if retention.is_set() {
        ctx.shard.stream_retention.note(db, key);
    }
    Ok(Reply::Ok)
}

/// The fields XINFO STREAM adds for a stream's settings: IDMP's (Redis 8.6)
/// for a stream that used IDMP or XCFGSET, retention's (strand's own) when set.
pub fn info_fields(s: &Stream, now: u64) -> Vec<(Reply, Reply)> {
    let field = |name: &str, n: u64| (Reply::bulk(name), Reply::Int(n as i64));
    let mut out = Vec::new();
    if let Some(m) = s.idmp.as_deref() {
        out.extend([
            field("idmp-duration", u64::from(m.duration_s)),
            field("idmp-maxsize", u64::from(m.maxsize)),
            field("pids-tracked", m.pids_tracked(now) as u64),
            field("iids-tracked", m.iids_tracked(now) as u64),
            field("iids-added", m.iids_added),
            field("iids-duplicates", m.iids_duplicates),
        ]);
    }
    if s.retention.is_set() {
        out.extend([
            field("retention-ms", s.retention.ms),
            field("retention-bytes", s.retention.bytes),
            field("data-bytes", s.data_bytes()),
        ]);
    }
    out
}
