//! Limits that close one client and keep the server up: the idle
//! `timeout`, `client-output-buffer-limit` (a subscriber that never reads,
//! a normal client over a hard limit), `maxclients`, the query buffer
//! limit, and a storm of thousands of connections sending garbage, half
//! frames and giant lengths while a well-behaved client is served.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use strand_tests::commands::q;
use strand_tests::raw::Raw;
use strand_tests::{wait_blocked, Server};

fn connect(s: &Server) -> TcpStream {
    let t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    t
}

/// A field of INFO, as a number.
fn info_num(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    let prefix = format!("{field}:");
    info.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {field}"))
}

/// Waits (up to a minute) until `connected_clients` is `n`.
fn wait_clients(c: &mut redis::Connection, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = info_num(c, "clients", "connected_clients");
        if now == n {
            return;
        }
        assert!(Instant::now() < deadline, "connected_clients stays {now}, expected {n}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the server closes the connection (or resets it); what arrived first.
fn read_to_close(t: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match t.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn config_get(c: &mut redis::Connection, name: &str) -> String {
    let pair: Vec<String> = q(c, &["CONFIG", "GET", name]);
    assert_eq!(pair.len(), 2, "{pair:?}");
    pair[1].clone()
}

#[test]
fn idle_timeout_closes_idle_clients_but_not_blocked_clients_or_subscribers() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(config_get(&mut c, "timeout"), "0");
    let mut blocked = Raw::new(&s);
    blocked.send(&["BLPOP", "jobs", "0"]);
    wait_blocked(&mut c, 1);
    let mut sub = Raw::new(&s);
    assert!(sub.cmd(&["SUBSCRIBE", "news"]).contains("subscribe"));
    let mut idle = connect(&s);
    idle.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    idle.read_exact(&mut pong).unwrap();
    // Set on a running server, it applies to connections already idle.
    let _: () = q(&mut c, &["CONFIG", "SET", "timeout", "1"]);
    assert_eq!(read_to_close(&mut idle), "", "an idle client is closed without a reply");
    // The blocked client and the subscriber were idle longer, and are still served.
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "jobs", "j1"]), 1);
    assert_eq!(blocked.reply(), "*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n");
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news", "hi"]), 1);
    assert_eq!(sub.reply(), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
    let _: () = q(&mut c, &["CONFIG", "SET", "timeout", "0"]);
    let e = strand_tests::commands::err(&mut c, &["CONFIG", "SET", "timeout", "-1"]);
    assert_eq!(e, "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive");
}

#[test]
fn timeout_and_output_limits_from_flags() {
    let s = Server::start(&["--timeout", "300", "--client-output-buffer-limit", "pubsub 64mb 16mb 120"]);
    let mut c = s.client();
    assert_eq!(config_get(&mut c, "timeout"), "300");
    let limits = config_get(&mut c, "client-output-buffer-limit");
    assert_eq!(limits, "normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 120");
    let _: () = q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "replica 1mb 1mb 10 normal 2mb 0 0"]);
    let limits = config_get(&mut c, "client-output-buffer-limit");
    assert_eq!(limits, "normal 2097152 0 0 slave 1048576 1048576 10 pubsub 67108864 16777216 120");
    let e = strand_tests::commands::err(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 1mb"]);
    let want = "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - \
                Wrong number of arguments in buffer limit configuration.";
    assert_eq!(e, want);
}

/// Publishes messages of 64 KiB (pausing `pace` after each) until no
/// subscriber receives them; returns the bytes published.
fn flood(c: &mut redis::Connection, channel: &str, pace: Duration) -> usize {
    let message = vec![b'm'; 64 * 1024];
    let mut sent = 0;
    loop {
        let receivers: i64 = redis::cmd("PUBLISH").arg(channel).arg(&message).query(c).unwrap();
        if receivers == 0 {
            return sent;
        }
        sent += message.len();
        assert!(sent < 2 << 30, "2 GiB published and the subscriber that never reads is still there");
        std::thread::sleep(pace);
    }
}

#[test]
fn a_subscriber_that_never_reads_is_closed_at_its_output_limit() {
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 4mb 1mb 60"]);
    let mut c = s.client();
    // Over the hard limit: closed at once. Over the soft limit (with a hard one far away): after a second.
    let rounds = [(None, Duration::ZERO), (Some("pubsub 256mb 256kb 1"), Duration::from_millis(5))];
    for (round, (limit, pace)) in rounds.into_iter().enumerate() {
        if let Some(limit) = limit {
            let _: () = q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", limit]);
        }
        let mut sub = connect(&s);
        sub.write_all(b"SUBSCRIBE flood\r\n").unwrap();
        let mut ack = [0u8; 34];
        sub.read_exact(&mut ack).unwrap();
        assert!(ack.starts_with(b"*3\r\n$9\r\nsubscribe"));
        // The subscriber reads no more; the kernel's socket buffers fill, then its mailbox.
        let sent = flood(&mut c, "flood", pace);
        assert_eq!(info_num(&mut c, "stats", "client_output_buffer_limit_disconnections"), round as u64 + 1);
        let got = read_to_close(&mut sub);
        assert!(got.len() < sent, "the subscriber got {} of {sent} bytes", got.len());
        eprintln!("round {round}: {sent} bytes published before the close, {} reached the subscriber", got.len());
    }
    assert!(s.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits."), "{}", s.log_text());
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "flood", "x"]), 0);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
}

#[test]
fn a_normal_client_over_its_hard_limit_is_closed_without_its_reply() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let big = "x".repeat(2 << 20);
    let _: () = q(&mut c, &["SET", "big", &big]);
    let _: () = q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"]);
    let mut t = connect(&s);
    t.write_all(b"GET big\r\n").unwrap();
    assert_eq!(read_to_close(&mut t), "");
    assert_eq!(info_num(&mut c, "stats", "client_output_buffer_limit_disconnections"), 1);
    // Small replies still go out; with the limit off again, so does the big one.
    assert_eq!(q::<String>(&mut c, &["ECHO", "small"]), "small");
    let _: () = q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]);
    assert_eq!(q::<String>(&mut c, &["GET", "big"]).len(), big.len());
}

#[test]
fn maxclients_and_the_query_buffer_limit_close_only_the_offender() {
    let s = Server::start(&["--maxclients", "3"]);
    let mut c = s.client();
    let mut a = Raw::new(&s);
    let mut b = Raw::new(&s);
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    let mut refused = connect(&s);
    assert_eq!(read_to_close(&mut refused), "-ERR max number of clients reached\r\n");
    assert_eq!(info_num(&mut c, "stats", "rejected_connections"), 1);
    drop(b);
    wait_clients(&mut c, 2);
    let _: () = q(&mut c, &["CONFIG", "SET", "client-query-buffer-limit", "1mb"]);
    let mut t = connect(&s);
    t.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n").unwrap();
    let _ = t.write_all(&vec![b'x'; 1536 * 1024]);
    let got = read_to_close(&mut t);
    assert!(got.starts_with("-ERR client query buffer limit reached"), "{got}");
    assert_eq!(info_num(&mut c, "stats", "client_query_buffer_limit_disconnections"), 1);
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
}

/// Raises this process's open-file soft limit toward `want` descriptors (the
/// server, started afterwards, inherits it); answers how many it may use.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < want && lim.rlim_max > lim.rlim_cur {
            lim.rlim_cur = want.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                eprintln!("raised the open-file soft limit to {}", lim.rlim_cur);
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("bad {line}"))
}

/// What one bad connection sends, and what the server must answer: a reply
/// prefix and whether it closes, or nothing (the connection stays open).
struct Bad {
    bytes: Vec<u8>,
    answer: Option<&'static str>,
    closes: bool,
}

/// Printable bytes without quotes or '*'.
fn junk(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.gen_range(b'!'..=b'~')).filter(|b| !b"\"'*".contains(b)).collect()
}

fn bad(i: usize, rng: &mut impl Rng) -> Bad {
    let (bytes, answer, closes) = match i % 8 {
        // Printable garbage ending a line: an unknown command, the connection stays.
        0 => ([b"X".as_slice(), &junk(rng, 300), b"\r\n"].concat(), Some("-ERR unknown command"), false),
        // A bad count line and binary garbage: a protocol error, closed.
        1 => ([b"*x\r\n".as_slice(), &(0..200).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>()].concat(), Some("-ERR Protocol error"), true),
        // Half a frame, left open.
        2 => (b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$1000\r\nhalf".to_vec(), None, false),
        // A bulk length over proto-max-bulk-len.
        3 => (b"*2\r\n$3\r\nGET\r\n$99999999999\r\n".to_vec(), Some("-ERR Protocol error: invalid bulk length"), true),
        // The largest bulk length allowed, with 20 KB of it sent: the server holds only what arrived.
        4 => ([b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n".as_slice(), &[b'v'; 20_000]].concat(), None, false),
        // A multibulk count over the limit.
        5 => (b"*2147483648\r\n".to_vec(), Some("-ERR Protocol error: invalid multibulk length"), true),
        // The largest count allowed, and then nothing.
        6 => (b"*1048576\r\n$3\r\nSET\r\n".to_vec(), None, false),
        // An inline line longer than 64 KiB without its newline.
        _ => (vec![b'a'; 70 * 1024], Some("-ERR Protocol error: too big inline request"), true),
    };
    Bad { bytes, answer, closes }
}

/// A client that keeps doing SET and GET of random values and checks each
/// answer, counting its round trips in `rounds`, until `stop`.
fn well_behaved(port: u16, stop: Arc<AtomicBool>, rounds: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        for i in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = format!("good:{}", i % 100);
            let value = format!("{i}:{}", rand::random::<u64>());
            let _: () = redis::cmd("SET").arg(&key).arg(&value).query(&mut c).unwrap();
            let back: String = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
            assert_eq!(back, value);
            rounds.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// Waits (up to a minute) until `rounds` has grown by `more`.
fn wait_rounds(rounds: &AtomicU64, more: u64) {
    let (from, deadline) = (rounds.load(Ordering::Relaxed), Instant::now() + Duration::from_secs(60));
    while rounds.load(Ordering::Relaxed) < from + more {
        assert!(Instant::now() < deadline, "the good client made {} rounds in a minute", rounds.load(Ordering::Relaxed) - from);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn thousands_of_bad_connections_leave_the_server_up_with_bounded_memory() {
    // Each connection is a descriptor here and one in the server; keep 1000 spare.
    let n = (raise_fd_limit(8000).saturating_sub(1000) as usize).min(4000);
    let s = Server::start(&[]);
    let mut c = s.client();
    let baseline = info_num(&mut c, "clients", "connected_clients");
    let rss_start = status_kib(s.pid(), "VmRSS");
    let (stop, rounds) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let good = well_behaved(s.port, stop.clone(), rounds.clone());
    let mut rng = rand::thread_rng();
    let mut conns = Vec::with_capacity(n);
    let mut sent = 0usize;
    for i in 0..n {
        let b = bad(i, &mut rng);
        let mut t = connect(&s);
        // The server may close a connection before all of it is written.
        let _ = t.write_all(&b.bytes);
        sent += b.bytes.len();
        conns.push((t, b));
    }
    let mut open = 0;
    for (t, b) in &mut conns {
        match (b.answer, b.closes) {
            (Some(prefix), true) => {
                let got = read_to_close(t);
                assert!(got.starts_with(prefix), "{prefix}: got {}", &got[..got.len().min(200)]);
            }
            (Some(prefix), false) => {
                let mut got = vec![0u8; prefix.len()];
                t.read_exact(&mut got).unwrap();
                assert_eq!(String::from_utf8_lossy(&got), prefix);
                open += 1;
            }
            (None, _) => open += 1,
        }
    }
    // Everything sent has been read and answered; the open ones are all still
    // there, and the good client is served beside them.
    wait_clients(&mut c, baseline + 1 + open);
    wait_rounds(&rounds, 200);
    let (rss_open, peak) = (status_kib(s.pid(), "VmRSS"), status_kib(s.pid(), "VmHWM"));
    stop.store(true, Ordering::Relaxed);
    good.join().unwrap();
    let rounds = rounds.load(Ordering::Relaxed);
    drop(conns);
    wait_clients(&mut c, baseline);
    let rss_end = status_kib(s.pid(), "VmRSS");
    eprintln!(
        "{n} bad connections ({open} left open), {sent} bytes sent; the good client made {rounds} SET+GET rounds; \
         server RSS KiB: {rss_start} at start, {rss_open} with them open, {rss_end} after, peak {peak}"
    );
    // A connection holds its read buffer (16 KiB, doubled only as bytes
    // arrive), a reply buffer (16 KiB) and its task and state: 64 KiB covers
    // them. Twice what was sent covers buffers rounded up to a power of two.
    // 64 MiB more covers the allocator's slack and the good client's keys.
    let bound_kib = rss_start + (n as u64 * 64) + (2 * sent as u64 / 1024) + 64 * 1024;
    assert!(peak < bound_kib, "peak RSS {peak} KiB over the bound of {bound_kib} KiB");
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}
