//! TLS on `--tls-port`: a rustls client (the redis crate's encoder and
//! parser over a `rustls::StreamOwned`) and `redis-cli --tls` run SET/GET,
//! pipelines, a value of several MB and keys of every shard; plaintext sent
//! to the TLS port closes that connection only; client certificates with
//! `--tls-ca-cert-file`; a silent client is closed by the handshake
//! timeout; `--port 0` serves TLS alone; missing or invalid
//! files stop start-up with a message naming the file. Certificates are made
//! per test with the `openssl` command (a CA, a server and a client cert).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use strand_tests::{binary, free_port, Server};

/// A CA and the server and client certificates it signed, in a temporary directory.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let certs = Certs { dir: tempfile::tempdir().unwrap() };
        let ca = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"];
        certs.openssl(&[&ca[..], &["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=strand test CA"]].concat());
        certs.leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
        certs.leaf("client", "extendedKeyUsage=clientAuth\n");
        certs
    }

    /// A key and a certificate signed by the CA, with these extensions.
    fn leaf(&self, name: &str, ext: &str) {
        std::fs::write(self.path(&format!("{name}.ext")), format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        let (key, csr, crt, extf) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        let subj = format!("/CN={name}");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &extf,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the openssl command is needed to make test certificates");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// The flags that turn TLS on at `port` with the server certificate.
    fn flags(&self, port: u16) -> Vec<String> {
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            self.arg("server.crt"),
            "--tls-key-file".into(),
            self.arg("server.key"),
        ]
    }
}

/// A RESP client over rustls: the redis crate packs commands and parses replies.
struct TlsConn {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    parser: redis::Parser,
}

impl TlsConn {
    /// Connects to 127.0.0.1:port trusting the test CA, showing the client certificate if asked.
    fn connect(certs: &Certs, port: u16, client_cert: bool) -> TlsConn {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(certs.path("ca.crt")).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client_cert {
            true => {
                let chain = vec![CertificateDer::from_pem_file(certs.path("client.crt")).unwrap()];
                builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(certs.path("client.key")).unwrap()).unwrap()
            }
            false => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        TlsConn { stream: rustls::StreamOwned::new(conn, tcp), parser: redis::Parser::new() }
    }

    /// Sends the commands in one write and reads one reply each.
    fn pipeline(&mut self, cmds: &[redis::Cmd]) -> redis::RedisResult<Vec<redis::Value>> {
        let mut out = Vec::new();
        for c in cmds {
            out.extend(c.get_packed_command());
        }
        self.stream.write_all(&out)?;
        self.stream.flush()?;
        cmds.iter().map(|_| self.parser.parse_value(&mut self.stream)).collect()
    }

    fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        let v = self.pipeline(std::slice::from_ref(cmd)).unwrap().remove(0);
        redis::from_redis_value(&v).unwrap()
    }
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(*a);
    }
    c
}

fn start(certs: &Certs, extra: &[&str]) -> (Server, u16) {
    let tls_port = free_port();
    let mut flags = certs.flags(tls_port);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    (Server::start(&refs), tls_port)
}

#[test]
fn set_get_pipelines_and_large_values_over_tls() {
    let certs = Certs::new();
    let (server, port) = start(&certs, &["--segment-size", "16mb"]);
    let mut c = TlsConn::connect(&certs, port, false);
    assert_eq!(c.query::<String>(&cmd(&["PING"])), "PONG");
    assert_eq!(c.query::<String>(&cmd(&["SET", "k", "v"])), "OK");
    assert_eq!(c.query::<String>(&cmd(&["GET", "k"])), "v");
    // A pipeline over keys of both shards, answered in order.
    let sets: Vec<redis::Cmd> = (0..2000).map(|i| cmd(&["SET", &format!("key:{i}"), &i.to_string()])).collect();
    assert!(c.pipeline(&sets).unwrap().iter().all(|v| *v == redis::Value::Okay));
    let gets: Vec<redis::Cmd> = (0..2000).map(|i| cmd(&["GET", &format!("key:{i}")])).collect();
    let got: Vec<String> = c.pipeline(&gets).unwrap().iter().map(|v| redis::from_redis_value(v).unwrap()).collect();
    assert_eq!(got, (0..2000).map(|i| i.to_string()).collect::<Vec<_>>());
    // Values of several MB, both ways.
    let big: String = (0..6 << 20).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let mut set = redis::cmd("SET");
    set.arg("big").arg(&big);
    assert_eq!(c.query::<String>(&set), "OK");
    assert_eq!(c.query::<String>(&cmd(&["GET", "big"])), big);
    assert_eq!(c.query::<usize>(&cmd(&["STRLEN", "big"])), big.len());
    // The plaintext port serves the same data.
    let mut plain = server.client();
    assert_eq!(redis::cmd("GET").arg("key:7").query::<String>(&mut plain).unwrap(), "7");
}

#[test]
fn a_tls_connection_keeps_working_where_a_plain_one_would_move() {
    let certs = Certs::new();
    let (server, port) = start(&certs, &[]);
    let mut c = TlsConn::connect(&certs, port, false);
    // One key per shard: whichever shard the connection landed on, one of them is remote, and
    // 100 requests in a row on it would move a plain connection there (pipeline:: checks that).
    let map = strand_engine::slot::SlotMap::new(2);
    let keys = [0, 1].map(|shard| (0..).map(|i| format!("k{i}")).find(|k| map.shard_of(k.as_bytes()) == shard).unwrap());
    for key in &keys {
        for i in 0..100 {
            assert_eq!(c.query::<i64>(&cmd(&["INCR", key])), i + 1);
        }
    }
    let stats: String = c.query(&cmd(&["INFO", "stats"]));
    assert!(stats.contains("connections_migrated:0\r\n"), "{stats}");
    let mut plain = server.client();
    assert_eq!(redis::cmd("GET").arg(&keys[1]).query::<i64>(&mut plain).unwrap(), 100);
    let info: String = c.query(&cmd(&["INFO", "server"]));
    assert!(info.contains(&format!("tls_port:{port}")), "{info}");
}

#[test]
fn pubsub_and_blocking_commands_over_tls() {
    let certs = Certs::new();
    let (server, port) = start(&certs, &[]);
    let mut plain = server.client();
    let mut sub = TlsConn::connect(&certs, port, false);
    let ack: Vec<redis::Value> = sub.query(&cmd(&["SUBSCRIBE", "news"]));
    assert_eq!(ack.len(), 3);
    let delivered: i64 = redis::cmd("PUBLISH").arg("news").arg("hello").query(&mut plain).unwrap();
    assert_eq!(delivered, 1);
    let msg: Vec<String> = redis::from_redis_value(&sub.parser.parse_value(&mut sub.stream).unwrap()).unwrap();
    assert_eq!(msg, ["message", "news", "hello"]);
    // A blocked client is answered when another connection pushes.
    let mut waiter = TlsConn::connect(&certs, port, false);
    waiter.stream.write_all(&cmd(&["BLPOP", "jobs", "0"]).get_packed_command()).unwrap();
    waiter.stream.flush().unwrap();
    strand_tests::wait_blocked(&mut plain, 1);
    let _: i64 = redis::cmd("RPUSH").arg("jobs").arg("j1").query(&mut plain).unwrap();
    let popped: Vec<String> = redis::from_redis_value(&waiter.parser.parse_value(&mut waiter.stream).unwrap()).unwrap();
    assert_eq!(popped, ["jobs", "j1"]);
}

#[test]
fn plaintext_on_the_tls_port_closes_only_that_connection() {
    let certs = Certs::new();
    let (server, port) = start(&certs, &["--loglevel", "debug"]);
    let mut good = TlsConn::connect(&certs, port, false);
    assert_eq!(good.query::<String>(&cmd(&["SET", "k", "before"])), "OK");
    // A silent client holds its socket open meanwhile; it must not stall anyone.
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut rest = Vec::new();
    // The server answers at most a TLS alert, then closes: read_to_end ends instead of timing out.
    if let Err(e) = plain.read_to_end(&mut rest) {
        assert!(!matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "not closed: {e}");
    }
    assert!(!rest.windows(4).any(|w| w == b"PONG"), "{rest:?}");
    assert_eq!(good.query::<String>(&cmd(&["GET", "k"])), "before");
    let mut again = TlsConn::connect(&certs, port, false);
    assert_eq!(again.query::<String>(&cmd(&["GET", "k"])), "before");
    let info: String = good.query(&cmd(&["INFO", "stats"]));
    let failures: u64 = info.lines().find_map(|l| l.strip_prefix("tls_handshake_failures:")).unwrap().trim().parse().unwrap();
    assert!(failures >= 1, "{info}");
    assert!(server.log_text().contains("TLS handshake failed"), "{}", server.log_text());
}

#[test]
fn a_silent_client_is_closed_by_the_handshake_timeout() {
    let certs = Certs::new();
    let (_server, port) = start(&certs, &[]);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The server's handshake timeout (10 s) closes it; the read ends well before this one's.
    silent.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut rest = Vec::new();
    if let Err(e) = silent.read_to_end(&mut rest) {
        assert!(!matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "not closed: {e}");
    }
    let mut c = TlsConn::connect(&certs, port, false);
    assert_eq!(c.query::<String>(&cmd(&["PING"])), "PONG");
}

#[test]
fn client_certificates_with_a_ca() {
    let certs = Certs::new();
    let (_server, port) = start(&certs, &["--tls-ca-cert-file", &certs.arg("ca.crt")]);
    let mut with = TlsConn::connect(&certs, port, true);
    assert_eq!(with.query::<String>(&cmd(&["PING"])), "PONG");
    // tls-auth-clients defaults to yes with a CA: a client without a certificate is refused.
    let mut without = TlsConn::connect(&certs, port, false);
    assert!(without.pipeline(&[cmd(&["PING"])]).is_err());
    let (_opt, port) = start(&certs, &["--tls-ca-cert-file", &certs.arg("ca.crt"), "--tls-auth-clients", "optional"]);
    let mut without = TlsConn::connect(&certs, port, false);
    assert_eq!(without.query::<String>(&cmd(&["PING"])), "PONG");
    let mut with = TlsConn::connect(&certs, port, true);
    assert_eq!(with.query::<String>(&cmd(&["PING"])), "PONG");
}

fn redis_cli(certs: &Certs, port: u16, args: &[&str], client_cert: bool) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["-p", &port.to_string(), "--tls", "--cacert", &certs.arg("ca.crt")]);
    if client_cert {
        c.args(["--cert", &certs.arg("client.crt"), "--key", &certs.arg("client.key")]);
    }
    let out = c.args(args).output().expect("redis-cli is needed for this test");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn redis_cli_over_tls() {
    let certs = Certs::new();
    let (_server, port) = start(&certs, &[]);
    assert_eq!(redis_cli(&certs, port, &["SET", "greeting", "hello over tls"], false), "OK");
    assert_eq!(redis_cli(&certs, port, &["GET", "greeting"], false), "hello over tls");
    let (_server, port) = start(&certs, &["--tls-ca-cert-file", &certs.arg("ca.crt")]);
    assert_eq!(redis_cli(&certs, port, &["PING"], true), "PONG");
}

#[test]
fn port_zero_serves_tls_alone() {
    let certs = Certs::new();
    let dir = strand_tests::data_dir();
    let tls_port = free_port();
    let mut args =
        vec!["--port".to_string(), "0".into(), "--dir".into(), dir.path().to_str().unwrap().into(), "--shards".into(), "1".into()];
    args.extend(certs.flags(tls_port));
    let mut child = Killed(Command::new(binary()).args(&args).stderr(std::process::Stdio::null()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "strand never listened on its TLS port");
        assert!(child.0.try_wait().unwrap().is_none(), "strand exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = TlsConn::connect(&certs, tls_port, false);
    assert_eq!(c.query::<String>(&cmd(&["PING"])), "PONG");
    let port: Vec<String> = c.query(&cmd(&["CONFIG", "GET", "port"]));
    assert_eq!(port, vec!["port", "0"]);
}

/// A child process killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs strand with these flags, expecting it to refuse to start; returns its stderr.
fn refused(extra: &[String]) -> String {
    let dir = strand_tests::data_dir();
    let out = Command::new(binary())
        .args(["--port", &free_port().to_string(), "--dir", dir.path().to_str().unwrap(), "--shards", "1"])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_or_invalid_files_stop_start_up() {
    let certs = Certs::new();
    let mut flags = certs.flags(free_port());
    let missing = certs.arg("nope.crt");
    flags[3] = missing.clone();
    let e = refused(&flags);
    assert!(e.contains("tls-cert-file") && e.contains(&missing), "{e}");
    let garbage = certs.path("garbage.key");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let mut flags = certs.flags(free_port());
    flags[5] = garbage.to_str().unwrap().into();
    let e = refused(&flags);
    assert!(e.contains("tls-key-file") && e.contains("garbage.key"), "{e}");
    // A key that does not belong to the certificate.
    let mut flags = certs.flags(free_port());
    flags[5] = certs.arg("client.key");
    let e = refused(&flags);
    assert!(e.contains("server.crt") && e.contains("client.key"), "{e}");
    let e = refused(&["--tls-port".into(), free_port().to_string()]);
    assert!(e.contains("--tls-cert-file") && e.contains("--tls-key-file"), "{e}");
    let mut flags = certs.flags(free_port());
    flags.extend(["--tls-auth-clients".into(), "yes".into()]);
    assert!(refused(&flags).contains("--tls-ca-cert-file"));
}
