//! Test harness: starts the real `strand` binary on a free port with a
//! temporary data directory, and hands out real clients (the `redis` crate).
//!
//! The binary is `$STRAND_BIN`, or `target/release/strand` (or `debug` for
//! an unoptimised test build) of this workspace: build it first
//! (`cargo build --release`). Data directories go under `$STRAND_TEST_DIR`
//! or the system temporary directory, which must support O_DIRECT (not tmpfs).

#![allow(clippy::unwrap_used)]

pub mod fuzz;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The strand binary under test.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("STRAND_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let bin = target.join(profile).join("strand");
    assert!(bin.exists(), "{} not found: run `cargo build --release` first (or set STRAND_BIN)", bin.display());
    bin
}

/// The strand-tools binary next to the server binary.
pub fn tools_binary() -> PathBuf {
    binary().with_file_name("strand-tools")
}

/// A free TCP port on 127.0.0.1, never one this process handed out before.
///
/// strand listens with SO_REUSEPORT, so a second server on a port that a
/// first one is about to take would not fail: the two would share it, and
/// each test would see the other's keys. The kernel may offer a port again
/// once its probe socket closes, so ports are remembered for the process's
/// life (tests run in parallel threads of one process per test binary).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A fresh data directory, removed on drop.
pub fn data_dir() -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix("strand-test-");
    match std::env::var("STRAND_TEST_DIR") {
        Ok(d) => {
            std::fs::create_dir_all(&d).unwrap();
            b.tempdir_in(d).unwrap()
        }
        Err(_) => b.tempdir().unwrap(),
    }
}

/// A running strand process.
pub struct Server {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// Its data directory.
    pub dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts strand with a fresh directory, 2 shards and 4 MiB segments unless `extra` says otherwise.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = data_dir();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts strand on an existing directory (the caller keeps it).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<String> = Vec::new();
        for (flag, default) in [("--shards", "2"), ("--segment-size", "4mb")] {
            if !extra.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Server { child: None, port: 0, dir: dir.to_path_buf(), args, log: dir.join("server.log"), _tmp: None };
        s.launch();
        s
    }

    fn launch(&mut self) {
        // A start that hangs is a bug (seen twice under heavy load, cause not yet
        // found): report the threads' stacks, then try once more so the rest of the
        // suite still runs.
        for attempt in 0..2 {
            self.spawn_child();
            match self.wait_ready(Duration::from_secs(if attempt == 0 { 20 } else { 60 })) {
                Ok(()) => return,
                Err(report) if attempt == 0 => {
                    eprintln!("WARNING: strand did not start in time; retrying once. {report}");
                    self.kill();
                }
                Err(report) => panic!("strand did not start in time: {report}"),
            }
        }
    }

    fn spawn_child(&mut self) {
        self.port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--dir", self.dir.to_str().unwrap()])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("strand exited during start-up ({status}); log:\n{}", self.log_text());
            }
            if let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200))) {
                // A server whose default user needs a password answers NOAUTH: it is up all the same.
                match redis::cmd("PING").query::<String>(&mut c) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.code() == Some("NOAUTH") || self.args.iter().any(|a| a == "--requirepass") => return Ok(()),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("log:\n{}\nthreads:\n{}", self.log_text(), stacks(self.pid())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new connection.
    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(self.url()).unwrap();
        let conn = c.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        conn
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited with 0.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc_kill(c.id() as i32, 15) };
                c.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => true,
        }
    }

    /// Waits (up to 60 s) for the process to exit by itself, as after SHUTDOWN; returns whether it exited with 0.
    pub fn wait_exit(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Starts the process again on the same directory (after kill or stop).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts the process again and expects it to fail; returns its log.
    pub fn restart_expect_failure(&mut self) -> String {
        self.kill();
        let out = Command::new(binary())
            .args(["--port", &free_port().to_string(), "--dir", self.dir.to_str().unwrap()])
            .args(&self.args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "strand started on a damaged directory");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stacks of every thread of a process, if gdb is installed.
fn stacks(pid: u32) -> String {
    match Command::new("gdb").args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt"]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('#') || l.starts_with("Thread"))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(no stacks: gdb: {e})"),
    }
}

/// Whether a `redis-server` binary is available for side-by-side checks.
pub fn redis_server_available() -> bool {
    Command::new("redis-server").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// A `redis-server` child process on a free port, for side-by-side checks; stopped on drop.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one with no persistence; None when `redis-server` is not installed or does not come up.
    pub fn start() -> Option<RedisServer> {
        if !redis_server_available() {
            return None;
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// A new connection.
    pub fn client(&self) -> redis::Connection {
        let url = format!("redis://127.0.0.1:{}/", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match redis::Client::open(url.as_str()).and_then(|c| c.get_connection()) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("connect to redis-server on {}: {e}", self.port),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one command on a new raw connection from another thread; its whole
/// reply arrives on the channel (for commands that block).
pub fn send_async(port: u16, args: &[&str]) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        let mut r = raw::Raw::connect(port, false);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(r.cmd(&argv));
    });
    rx
}

/// `n` keys named `prefix{i}`, each on another shard (of `shards`) than the
/// one before it.
pub fn alternating_keys(prefix: &str, n: usize, shards: usize) -> Vec<String> {
    let map = strand_engine::slot::SlotMap::new(shards);
    let mut out: Vec<String> = Vec::new();
    for i in 0.. {
        let k = format!("{prefix}{i}");
        if out.last().is_none_or(|p| map.shard_of(p.as_bytes()) != map.shard_of(k.as_bytes())) {
            out.push(k);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// Waits until INFO says `n` clients are blocked.
pub fn wait_blocked(c: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(c).unwrap();
        let blocked = info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse::<usize>().ok());
        if blocked == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "waiting for {n} blocked clients: {info}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Commands written as string slices, and their replies or error lines.
pub mod commands {
    use redis::{Connection, FromRedisValue, RedisError, Value};

    use super::Server;

    /// A server with default flags and one connection to it.
    pub fn start() -> (Server, Connection) {
        let server = Server::start(&[]);
        let conn = server.client();
        (server, conn)
    }

    /// A command from its words.
    pub fn cmd(args: &[&str]) -> redis::Cmd {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c
    }

    /// Runs a command that must succeed.
    pub fn q<T: FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
        cmd(args).query(c).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
    }

    /// The whole error line the server answered, e.g. `ERR syntax error`.
    pub fn error_text(e: &RedisError) -> String {
        match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_string(),
            _ => e.to_string(),
        }
    }

    /// The integer fields of a map-shaped reply (XINFO STREAM, QINFO ...) by name.
    pub fn int_fields(c: &mut Connection, args: &[&str]) -> std::collections::HashMap<String, i64> {
        let v: Value = q(c, args);
        let Value::Array(items) = v else { panic!("{args:?}: not a flat map: {v:?}") };
        items
            .chunks(2)
            .filter_map(|kv| match (&kv[0], &kv[1]) {
                (Value::BulkString(k), Value::Int(n)) => Some((String::from_utf8_lossy(k).into_owned(), *n)),
                _ => None,
            })
            .collect()
    }

    /// Runs a command that must fail; returns the error line.
    pub fn err(c: &mut Connection, args: &[&str]) -> String {
        match cmd(args).query::<Value>(c) {
            Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
            Err(e) => error_text(&e),
        }
    }
}

/// A raw RESP connection, for tests that check replies byte for byte.
pub mod raw {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::Server;

    /// A connection that sends commands as RESP arrays and reads whole replies as text.
    pub struct Raw {
        w: TcpStream,
        r: BufReader<TcpStream>,
    }

    impl Raw {
        /// A RESP2 connection to `s`.
        pub fn new(s: &Server) -> Raw {
            Raw::connect(s.port, false)
        }

        /// A connection that said HELLO 3 first.
        pub fn resp3(s: &Server) -> Raw {
            Raw::connect(s.port, true)
        }

        /// A connection to a port on loopback (strand or redis-server), RESP3 if asked.
        pub fn connect(port: u16, resp3: bool) -> Raw {
            let t = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect to {port}: {e}"));
            t.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
            t.set_nodelay(true).unwrap_or_else(|e| panic!("{e}"));
            let w = t.try_clone().unwrap_or_else(|e| panic!("{e}"));
            let mut raw = Raw { w, r: BufReader::new(t) };
            if resp3 {
                let hello = raw.cmd(&["HELLO", "3"]);
                assert!(hello.starts_with('%'), "HELLO 3 answered {hello:?}");
            }
            raw
        }

        /// Sends a command without reading its reply.
        pub fn send(&mut self, args: &[&str]) {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
            self.w.write_all(&out).unwrap_or_else(|e| panic!("send {args:?}: {e}"));
        }

        /// Sends a command and answers its whole reply, byte for byte.
        pub fn cmd(&mut self, args: &[&str]) -> String {
            self.send(args);
            self.reply()
        }

        /// Reads one whole reply.
        pub fn reply(&mut self) -> String {
            let mut out = Vec::new();
            self.read_one(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        }

        /// Whether no reply byte arrives within `wait`.
        pub fn quiet_for(&mut self, wait: Duration) -> bool {
            let _ = self.r.get_ref().set_read_timeout(Some(wait));
            let quiet = match self.r.fill_buf() {
                Ok(_) => false,
                Err(e) => matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            };
            let _ = self.r.get_ref().set_read_timeout(Some(Duration::from_secs(10)));
            quiet
        }

        fn read_one(&mut self, out: &mut Vec<u8>) {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).unwrap_or_else(|e| panic!("reading a reply: {e}"));
            assert!(line.ends_with(b"\r\n"), "connection closed mid-reply after {:?}", String::from_utf8_lossy(out));
            let n: i64 = std::str::from_utf8(&line[1..line.len() - 2]).unwrap_or("0").parse().unwrap_or(0);
            let kind = line[0];
            out.extend_from_slice(&line);
            match kind {
                b'$' | b'=' | b'!' if n >= 0 => {
                    let mut body = vec![0u8; n as usize + 2];
                    self.r.read_exact(&mut body).unwrap_or_else(|e| panic!("reading a bulk reply: {e}"));
                    out.extend_from_slice(&body);
                }
                b'*' | b'~' | b'>' => (0..n.max(0)).for_each(|_| self.read_one(out)),
                b'%' | b'|' => (0..2 * n.max(0)).for_each(|_| self.read_one(out)),
                _ => {}
            }
        }
    }
}
