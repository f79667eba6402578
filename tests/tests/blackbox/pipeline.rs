//! Pipelining: many commands in one write, over keys on every shard, answered
//! in request order; several pipelining connections at once.

#![allow(clippy::unwrap_used)]

use redis::Value;
use strand_tests::commands::start;
use strand_tests::Server;

#[test]
fn ten_thousand_sets_then_gets_in_order() {
    let (_s, mut c) = start();
    let n = 10_000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("key:{i}")).arg(format!("value:{i}"));
    }
    let oks: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(oks.len(), n);
    assert!(oks.iter().all(|r| r == "OK"));
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("GET").arg(format!("key:{i}"));
    }
    let values: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(values.len(), n);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v, &format!("value:{i}"), "reply {i} out of order");
    }
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), n);
}

#[test]
fn sets_and_gets_in_one_pipeline() {
    let (_s, mut c) = start();
    let n = 10_000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("key:{i}")).arg(format!("value:{i}")).ignore();
    }
    // Reverse order, so that replies from both shards interleave.
    for i in (0..n).rev() {
        p.cmd("GET").arg(format!("key:{i}"));
    }
    let values: Vec<String> = p.query(&mut c).unwrap();
    assert_eq!(values.len(), n);
    for (j, v) in values.iter().enumerate() {
        assert_eq!(v, &format!("value:{}", n - 1 - j));
    }
}

#[test]
fn interleaved_writes_and_reads_see_each_other_in_order() {
    let (_s, mut c) = start();
    let keys: Vec<String> = (0..50).map(|i| format!("ctr:{i}")).collect();
    let mut p = redis::pipe();
    let mut want: Vec<Value> = Vec::new();
    for round in 0..20i64 {
        for (k, key) in keys.iter().enumerate() {
            let k = k as i64;
            if round == 0 {
                p.cmd("SET").arg(key).arg(k);
                want.push(Value::Okay);
            }
            p.cmd("INCR").arg(key);
            want.push(Value::Int(k + round + 1));
            p.cmd("GET").arg(key);
            want.push(Value::BulkString((k + round + 1).to_string().into_bytes()));
            p.cmd("INCRBY").arg(key).arg(10);
            want.push(Value::Int(k + round + 11));
            p.cmd("DECRBY").arg(key).arg(10);
            want.push(Value::Int(k + round + 1));
        }
        // A multi-shard read in the middle sees every write before it.
        let mut mget = redis::cmd("MGET");
        for key in &keys {
            mget.arg(key);
        }
        p.add_command(mget);
        want.push(Value::Array((0..50i64).map(|k| Value::BulkString((k + round + 1).to_string().into_bytes())).collect()));
    }
    p.cmd("DEL").arg(&keys[0]).arg(&keys[1]);
    want.push(Value::Int(2));
    p.cmd("GET").arg(&keys[0]);
    want.push(Value::Nil);
    p.cmd("EXISTS").arg(&keys[..]);
    want.push(Value::Int(48));
    let got: Vec<Value> = p.query(&mut c).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "reply {i}");
    }
}

#[test]
fn append_and_getrange_in_a_pipeline() {
    let (_s, mut c) = start();
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("APPEND").arg(format!("log:{}", i % 10)).arg(format!("[{i}]"));
    }
    for k in 0..10 {
        p.cmd("GET").arg(format!("log:{k}"));
    }
    let got: Vec<Value> = p.query(&mut c).unwrap();
    for k in 0..10usize {
        let want: String = (0..1000).filter(|i| i % 10 == k).map(|i| format!("[{i}]")).collect();
        assert_eq!(got[1000 + k], Value::BulkString(want.into_bytes()), "log:{k}");
    }
}

#[test]
fn several_connections_pipelining_at_once() {
    let s = Server::start(&[]);
    let threads = 6;
    let per = 3_000;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let mut c = s.client();
            scope.spawn(move || {
                for round in 0..3 {
                    let mut p = redis::pipe();
                    for i in 0..per {
                        p.cmd("SET").arg(format!("t{t}:{i}")).arg(format!("{round}:{t}:{i}")).ignore();
                        p.cmd("INCR").arg(format!("t{t}:count"));
                    }
                    for i in 0..per {
                        p.cmd("GET").arg(format!("t{t}:{i}"));
                    }
                    let got: Vec<Value> = p.query(&mut c).unwrap();
                    assert_eq!(got.len(), 2 * per);
                    for i in 0..per {
                        let count = (round * per + i + 1) as i64;
                        assert_eq!(got[i], Value::Int(count), "thread {t} round {round} INCR {i}");
                        assert_eq!(
                            got[per + i],
                            Value::BulkString(format!("{round}:{t}:{i}").into_bytes()),
                            "thread {t} round {round} GET {i}"
                        );
                    }
                }
            });
        }
    });
    let mut c = s.client();
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), threads * (per + 1));
    for t in 0..threads {
        assert_eq!(redis::cmd("GET").arg(format!("t{t}:count")).query::<usize>(&mut c).unwrap(), 3 * per);
    }
}

#[test]
fn raw_pipeline_in_one_write() {
    // Many commands in a single packet, including inline commands, with a
    // reply read only after everything was sent.
    use std::io::{Read, Write};
    let s = Server::start(&[]);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..2000 {
        req.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\nk{i}\r\n$1\r\n{}\r\n", format!("k{i}").len(), i % 10).as_bytes());
        want.extend_from_slice(b"+OK\r\n");
    }
    for i in 0..2000 {
        req.extend_from_slice(format!("GET k{i}\r\n").as_bytes());
        want.extend_from_slice(format!("$1\r\n{}\r\n", i % 10).as_bytes());
    }
    req.extend_from_slice(b"PING\r\n");
    want.extend_from_slice(b"+PONG\r\n");
    sock.write_all(&req).unwrap();
    let mut got = vec![0u8; want.len()];
    sock.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
}

/// A connection reuses its previous command's table entry when the next
/// name matches it; names that share a prefix, change case, are unknown or
/// are containers must each still find their own entry.
/// A connection reuses its previous command's table entry when the next
/// name matches it: names that share a prefix, change case, are unknown or
/// are containers must each still find their own entry.
#[test]
fn a_pipeline_of_changing_commands_runs_each_one() {
    // Sent raw, in one write: the redis crate would stop at the unknown command's error.
    use std::io::{Read, Write};
    let s = Server::start(&[]);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let req = "SET k 1\r\nset k 2\r\nGET k\r\nGETSET k 3\r\ngEt k\r\nGETDEL k\r\nGET k\r\n\
               CLIENT SETNAME conn-b\r\nCLIENT GETNAME\r\nINCR m\r\nINCRBY m 5\r\nINCR m\r\nINCRX m\r\nINCR m\r\n";
    let want = "+OK\r\n+OK\r\n$1\r\n2\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n3\r\n$-1\r\n\
                +OK\r\n$6\r\nconn-b\r\n:1\r\n:6\r\n:7\r\n\
                -ERR unknown command 'INCRX', with args beginning with: 'm' \r\n:8\r\n";
    sock.write_all(req.as_bytes()).unwrap();
    let mut got = vec![0u8; want.len()];
    sock.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), want);
}

fn info_field(c: &mut redis::Connection, field: &str) -> i64 {
    let text: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).map(|v| v.trim().parse().unwrap()).unwrap()
}

#[test]
fn a_connection_moves_to_the_shard_that_owns_its_keys_and_keeps_its_state() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("mover").query(&mut c).unwrap();
    // One key per shard: whichever shard this connection landed on, one of them is remote.
    let map = strand_engine::slot::SlotMap::new(2);
    let key0 = (0..).map(|i| format!("a{i}")).find(|k| map.shard_of(k.as_bytes()) == 0).unwrap();
    let key1 = (0..).map(|i| format!("b{i}")).find(|k| map.shard_of(k.as_bytes()) == 1).unwrap();
    for key in [&key0, &key1] {
        for i in 0..100 {
            let _: () = redis::cmd("SET").arg(key).arg(i).query(&mut c).unwrap();
            let v: i64 = redis::cmd("GET").arg(key).query(&mut c).unwrap();
            assert_eq!(v, i);
        }
    }
    assert!(info_field(&mut c, "connections_migrated") >= 1, "no connection moved");
    assert_eq!(redis::cmd("CLIENT").arg("ID").query::<i64>(&mut c).unwrap(), id);
    assert_eq!(redis::cmd("CLIENT").arg("GETNAME").query::<String>(&mut c).unwrap(), "mover");
    // Still on database 3.
    let mut other = s.client();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut other).unwrap();
    assert_eq!(redis::cmd("GET").arg(&key1).query::<i64>(&mut other).unwrap(), 99);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut other).unwrap();
    assert_eq!(list.lines().filter(|l| l.starts_with(&format!("id={id} "))).count(), 1, "{list}");
    // CLIENT KILL finds it on its new shard.
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query(&mut other).unwrap();
    assert_eq!(killed, 1);
    assert!(redis::cmd("PING").query::<String>(&mut c).is_err());
}

#[test]
fn connections_stay_put_when_migration_is_off() {
    let s = Server::start(&["--migrate-connections", "no"]);
    let mut c = s.client();
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("{{same}}{i}")).arg(i).query(&mut c).unwrap();
    }
    assert_eq!(info_field(&mut c, "connections_migrated"), 0);
}

#[test]
fn spinning_shards_answer_cross_shard_pipelines_in_order() {
    let s = Server::start(&["--spin-before-park", "200"]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("SET").arg(format!("spin:{i}")).arg(i).ignore();
    }
    for i in 0..2000 {
        pipe.cmd("GET").arg(format!("spin:{i}"));
    }
    let got: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<i64>>());
    let conf: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("spin-before-park").query(&mut c).unwrap();
    assert_eq!(conf, ["spin-before-park", "200"]);
    let err = redis::cmd("CONFIG").arg("SET").arg("spin-before-park").arg("0").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
}

#[test]
fn a_spin_window_over_a_second_is_refused_at_start() {
    let dir = strand_tests::data_dir();
    let out = std::process::Command::new(strand_tests::binary())
        .args(["--spin-before-park", "1000001", "--port", &strand_tests::free_port().to_string()])
        .args(["--dir", dir.path().join("d").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spin-before-park 1000001"), "{err}");
}
