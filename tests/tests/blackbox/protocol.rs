//! The wire protocol over raw TCP: any split of bytes, inline commands,
//! pipelines, limits that close only the offending connection, and the real
//! `redis-cli` and `redis-benchmark` tools where they are installed.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use strand_tests::Server;

fn connect(s: &Server) -> TcpStream {
    let t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t.set_nodelay(true).unwrap();
    t
}

/// Reads until `expected.len()` bytes arrived, and compares.
fn expect(t: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    t.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
}

/// Reads until the peer closes, returning everything.
fn read_to_close(t: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = t.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn every_split_of_a_pipeline_gives_the_same_replies() {
    let s = Server::start(&[]);
    let req = b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\na\r\nb\0\r\n*2\r\n$3\r\nGET\r\n$2\r\nk1\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
    let reply = b"+OK\r\n$5\r\na\r\nb\0\r\n+PONG\r\n+PONG\r\n";
    for split in 1..req.len() {
        let mut t = connect(&s);
        t.write_all(&req[..split]).unwrap();
        t.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        t.write_all(&req[split..]).unwrap();
        expect(&mut t, reply);
    }
}

#[test]
fn byte_by_byte_request() {
    let s = Server::start(&[]);
    let mut t = connect(&s);
    for b in b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n" {
        t.write_all(&[*b]).unwrap();
    }
    expect(&mut t, b"+OK\r\n$5\r\nvalue\r\n");
}

#[test]
fn inline_commands_as_telnet_sends_them() {
    let s = Server::start(&[]);
    let mut t = connect(&s);
    t.write_all(b"SET greeting \"hello world\"\r\nGET greeting\nPING\r\n\r\nECHO 'it''s'\r\n").unwrap();
    expect(&mut t, b"+OK\r\n$11\r\nhello world\r\n+PONG\r\n");
    let rest = {
        let mut buf = [0u8; 128];
        let n = t.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(rest.starts_with("-ERR Protocol error: unbalanced quotes"), "{rest}");
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let s = Server::start(&[]);
    let mut bystander = s.client();
    let _: () = redis::cmd("SET").arg("safe").arg("1").query(&mut bystander).unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length"),
        (b"*abc\r\n", "-ERR Protocol error: invalid multibulk length"),
        (b"*99999999\r\n", "-ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'"),
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length"),
    ];
    for (req, err) in cases {
        let mut t = connect(&s);
        t.write_all(b"PING\r\n").unwrap();
        t.write_all(req).unwrap();
        let got = read_to_close(&mut t);
        assert!(got.starts_with("+PONG\r\n"), "{got}");
        assert!(got[7..].starts_with(err), "for {:?}: {got}", String::from_utf8_lossy(req));
    }
    let v: String = redis::cmd("GET").arg("safe").query(&mut bystander).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn configured_limits_answer_with_an_error() {
    let s = Server::start(&["--proto-max-bulk-len", "1mb", "--client-query-buffer-limit", "1mb"]);
    let mut t = connect(&s);
    t.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n").unwrap();
    let got = read_to_close(&mut t);
    assert!(got.starts_with("-ERR Protocol error: invalid bulk length"), "{got}");
    // A huge inline line without a newline is refused too.
    let mut t = connect(&s);
    let _ = t.write_all(&vec![b'a'; 200 * 1024]);
    let got = read_to_close(&mut t);
    assert!(got.starts_with("-ERR Protocol error: too big inline request"), "{got}");
    // A value of 900 KB is fine.
    let mut c = s.client();
    let big = vec![b'x'; 900 * 1024];
    let _: () = redis::cmd("SET").arg("big").arg(&big).query(&mut c).unwrap();
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut c).unwrap();
    assert_eq!(back, big);
}

#[test]
fn large_values_round_trip_through_the_log() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    let sizes = [0usize, 1, 4063, 4064, 4065, 100_000, 1_000_000, 3_000_000];
    for (i, n) in sizes.iter().enumerate() {
        let v: Vec<u8> = (0..*n).map(|j| (j * 31 + i) as u8).collect();
        let _: () = redis::cmd("SET").arg(format!("v{i}")).arg(&v).query(&mut c).unwrap();
    }
    // Larger than a 4 MiB test segment: refused with a clear error, nothing written.
    let huge = vec![b'h'; 5 << 20];
    let err = redis::cmd("SET").arg("huge").arg(&huge).query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("does not fit a log segment"), "{err}");
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    for (i, n) in sizes.iter().enumerate() {
        let v: Vec<u8> = redis::cmd("GET").arg(format!("v{i}")).query(&mut c).unwrap();
        assert_eq!(v.len(), *n);
        assert!(v.iter().enumerate().all(|(j, b)| *b == (j * 31 + i) as u8));
    }
    assert!(!redis::cmd("EXISTS").arg("huge").query::<bool>(&mut c).unwrap());
}

#[test]
fn resp3_replies_after_hello_3() {
    let s = Server::start(&[]);
    let mut t = connect(&s);
    t.write_all(b"HELLO 3\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = t.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"%7\r\n"), "{}", String::from_utf8_lossy(&buf[..n]));
    t.write_all(b"GET missing\r\nSET n 1\r\nINCRBYFLOAT n 1.5\r\n").unwrap();
    expect(&mut t, b"_\r\n+OK\r\n$3\r\n2.5\r\n");
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn redis_cli_works_unchanged() {
    if !tool("redis-cli") {
        eprintln!("redis-cli not installed; skipping");
        return;
    }
    let s = Server::start(&[]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli").args(["-p", &s.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "a", "hello"]), "OK");
    assert_eq!(cli(&["GET", "a"]), "hello");
    assert_eq!(cli(&["INCR", "n"]), "1");
    assert_eq!(cli(&["DBSIZE"]), "2");
    assert!(cli(&["INFO", "server"]).contains("redis_version:7.4.0"));
    assert!(cli(&["NOSUCH"]).starts_with("ERR unknown command 'NOSUCH'"));
    // Piped inline commands, as `echo ... | redis-cli` sends them.
    let out = Command::new("sh").arg("-c").arg(format!("printf 'SET b 2\\nGET b\\n' | redis-cli -p {}", s.port)).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK\n2");
}

#[test]
fn redis_benchmark_runs_without_errors() {
    if !tool("redis-benchmark") {
        eprintln!("redis-benchmark not installed; skipping");
        return;
    }
    let s = Server::start(&["--appendfsync", "everysec"]);
    // Random keys (-r) spread over both shards; with -r, MSET's ten keys do
    // too, and run through the cross-shard coordinator.
    let runs: [&[&str]; 4] = [
        &["-t", "set,get,incr", "-r", "1000", "-P", "1"],
        &["-t", "set,get,incr", "-r", "1000", "-P", "16"],
        &["-t", "mset", "-P", "16"],
        &["-t", "mset", "-r", "1000", "-P", "4"],
    ];
    for extra in runs {
        let out = Command::new("redis-benchmark")
            .args(["-p", &s.port.to_string(), "-n", "20000", "-c", "20", "-q"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !text.contains("Error"), "{extra:?}: {text}");
        for t in extra[1].split(',') {
            let name = t.to_uppercase();
            assert!(text.contains(&name) && text.contains("requests per second"), "no {name} result in:\n{text}");
        }
    }
}
