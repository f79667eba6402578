//! Connection and server commands, checked against what Redis 7.4 answers:
//! PING, ECHO, QUIT, HELLO, AUTH, CLIENT, INFO, CONFIG, COMMAND, TIME,
//! LASTSAVE, FUNCTION, unknown commands and SHUTDOWN.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, FromRedisValue, Value};
use strand_tests::commands::{err, q, start};
use strand_tests::Server;

fn text(v: &Value) -> String {
    String::from_redis_value(v).unwrap_or_else(|e| panic!("{v:?} is not text: {e}"))
}

/// The value of `field` in a RESP3 map or a RESP2 flat array of pairs.
fn field<'a>(reply: &'a Value, name: &str) -> Option<&'a Value> {
    match reply {
        Value::Map(pairs) => pairs.iter().find(|(k, _)| text(k) == name).map(|(_, v)| v),
        Value::Array(items) => items.chunks(2).find(|p| text(&p[0]) == name).map(|p| &p[1]),
        other => panic!("not a map: {other:?}"),
    }
}

fn info(c: &mut Connection, section: Option<&str>) -> String {
    let mut args = vec!["INFO"];
    args.extend(section);
    q(c, &args)
}

/// A `field:value` line of INFO.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

// ---------------------------------------------------------------- PING / ECHO / QUIT

#[test]
fn ping_and_echo() {
    let (_s, mut c) = start();
    assert_eq!(q::<Value>(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
    assert_eq!(q::<Value>(&mut c, &["PING", "hello world"]), Value::BulkString(b"hello world".to_vec()));
    assert_eq!(q::<Value>(&mut c, &["ping", ""]), Value::BulkString(Vec::new()));
    assert_eq!(err(&mut c, &["PING", "a", "b"]), "ERR wrong number of arguments for 'ping' command");
    assert_eq!(q::<Value>(&mut c, &["ECHO", "hi"]), Value::BulkString(b"hi".to_vec()));
    let bin = b"a\0b\r\n\xff".to_vec();
    assert_eq!(redis::cmd("ECHO").arg(&bin).query::<Vec<u8>>(&mut c).unwrap(), bin);
    assert_eq!(err(&mut c, &["ECHO"]), "ERR wrong number of arguments for 'echo' command");
    assert_eq!(err(&mut c, &["ECHO", "a", "b"]), "ERR wrong number of arguments for 'echo' command");
}

#[test]
fn quit_closes_the_connection() {
    let (s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["QUIT"]), "OK");
    assert!(redis::cmd("PING").query::<String>(&mut c).is_err(), "the connection still answers after QUIT");
    // The server is fine.
    let mut c2 = s.client();
    assert_eq!(q::<String>(&mut c2, &["PING"]), "PONG");
}

// ---------------------------------------------------------------- HELLO

#[test]
fn hello_3_answers_a_map_and_switches_to_resp3() {
    let (_s, mut c) = start();
    let id: i64 = q(&mut c, &["CLIENT", "ID"]);
    let reply = redis::cmd("HELLO").arg(3).query::<Value>(&mut c).unwrap();
    assert!(matches!(reply, Value::Map(_)), "HELLO 3 answered {reply:?}");
    assert_eq!(text(field(&reply, "server").unwrap()), "redis");
    assert_eq!(text(field(&reply, "version").unwrap()), "7.4.0");
    assert_eq!(field(&reply, "proto"), Some(&Value::Int(3)));
    assert_eq!(field(&reply, "id"), Some(&Value::Int(id)));
    assert_eq!(text(field(&reply, "mode").unwrap()), "standalone");
    assert_eq!(text(field(&reply, "role").unwrap()), "master");
    assert!(matches!(field(&reply, "modules"), Some(Value::Array(_))));
    // Later replies are RESP3: CONFIG GET is a map, nil is null.
    let cfg = q::<Value>(&mut c, &["CONFIG", "GET", "maxclients"]);
    assert!(matches!(cfg, Value::Map(_)), "CONFIG GET under RESP3 answered {cfg:?}");
    assert_eq!(q::<Value>(&mut c, &["GET", "nope"]), Value::Nil);
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
    // And back.
    let reply = redis::cmd("HELLO").arg(2).query::<Value>(&mut c).unwrap();
    let Value::Array(items) = &reply else { panic!("HELLO 2 answered {reply:?}") };
    assert_eq!(items.len(), 14);
    assert_eq!(field(&reply, "proto"), Some(&Value::Int(2)));
    let cfg = q::<Value>(&mut c, &["CONFIG", "GET", "maxclients"]);
    assert!(matches!(cfg, Value::Array(_)), "CONFIG GET under RESP2 answered {cfg:?}");
}

#[test]
fn hello_without_version_and_with_options() {
    let (_s, mut c) = start();
    let reply = q::<Value>(&mut c, &["HELLO"]);
    assert_eq!(field(&reply, "proto"), Some(&Value::Int(2)));
    let reply = q::<Value>(&mut c, &["HELLO", "3", "SETNAME", "myname"]);
    assert_eq!(field(&reply, "proto"), Some(&Value::Int(3)));
    assert_eq!(q::<String>(&mut c, &["CLIENT", "GETNAME"]), "myname");
    assert_eq!(err(&mut c, &["HELLO", "4"]), "NOPROTO unsupported protocol version");
    assert_eq!(err(&mut c, &["HELLO", "1"]), "NOPROTO unsupported protocol version");
    assert_eq!(err(&mut c, &["HELLO", "abc"]), "ERR Protocol version is not an integer or out of range");
    assert_eq!(err(&mut c, &["HELLO", "3", "FOO"]), "ERR Syntax error in HELLO option 'FOO'");
    // Still RESP3 after the failed calls.
    assert!(matches!(q::<Value>(&mut c, &["CONFIG", "GET", "maxclients"]), Value::Map(_)));
}

// ---------------------------------------------------------------- AUTH

#[test]
fn auth_without_a_password_configured() {
    let (_s, mut c) = start();
    assert_eq!(
        err(&mut c, &["AUTH", "foo"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    assert_eq!(err(&mut c, &["AUTH", "a", "b", "c"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["AUTH"]), "ERR wrong number of arguments for 'auth' command");
}

#[test]
fn auth_with_requirepass() {
    let s = Server::start(&["--requirepass", "s3cret"]);
    let mut c = s.client();
    assert_eq!(err(&mut c, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(err(&mut c, &["SET", "k", "v"]), "NOAUTH Authentication required.");
    assert_eq!(err(&mut c, &["PING"]), "NOAUTH Authentication required.");
    assert_eq!(err(&mut c, &["AUTH", "wrong"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(err(&mut c, &["AUTH", "default", "wrong"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(err(&mut c, &["AUTH", "nobody", "s3cret"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(err(&mut c, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(q::<String>(&mut c, &["AUTH", "s3cret"]), "OK");
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v"]), "OK");
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "v");
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    // AUTH with the user name.
    let mut c2 = s.client();
    assert_eq!(q::<String>(&mut c2, &["AUTH", "default", "s3cret"]), "OK");
    assert_eq!(q::<String>(&mut c2, &["GET", "k"]), "v");
    // HELLO needs AUTH first, or its AUTH option.
    let mut c3 = s.client();
    assert!(err(&mut c3, &["HELLO", "3"]).starts_with("NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(err(&mut c3, &["HELLO", "3", "AUTH", "default", "bad"]), "WRONGPASS invalid username-password pair or user is disabled.");
    let reply = q::<Value>(&mut c3, &["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert_eq!(field(&reply, "proto"), Some(&Value::Int(3)));
    assert_eq!(q::<String>(&mut c3, &["GET", "k"]), "v");
    // A client that gives the password in its URL.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", s.port);
    let mut c4 = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(q::<String>(&mut c4, &["GET", "k"]), "v");
}

// ---------------------------------------------------------------- CLIENT

#[test]
fn client_setname_getname_id_info() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["CLIENT", "GETNAME"]), None);
    assert_eq!(q::<String>(&mut c, &["CLIENT", "SETNAME", "worker-1"]), "OK");
    assert_eq!(q::<Option<String>>(&mut c, &["CLIENT", "GETNAME"]).as_deref(), Some("worker-1"));
    assert_eq!(err(&mut c, &["CLIENT", "SETNAME", "a b"]), "ERR Client names cannot contain spaces, newlines or special characters.");
    assert_eq!(err(&mut c, &["CLIENT", "SETNAME", "a\nb"]), "ERR Client names cannot contain spaces, newlines or special characters.");
    assert_eq!(q::<Option<String>>(&mut c, &["CLIENT", "GETNAME"]).as_deref(), Some("worker-1"));
    // An empty name clears it.
    assert_eq!(q::<String>(&mut c, &["CLIENT", "SETNAME", ""]), "OK");
    assert_eq!(q::<Option<String>>(&mut c, &["CLIENT", "GETNAME"]), None);
    q::<()>(&mut c, &["CLIENT", "SETNAME", "worker-1"]);
    let id: i64 = q(&mut c, &["CLIENT", "ID"]);
    assert!(id > 0);
    let info: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    assert!(info.contains(" name=worker-1 "), "{info}");
    assert!(info.contains(" db=0 "), "{info}");
    q::<()>(&mut c, &["SELECT", "3"]);
    let info: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(info.contains(" db=3 "), "{info}");
    // Another connection has a different id.
    let mut c2 = _s.client();
    assert_ne!(q::<i64>(&mut c2, &["CLIENT", "ID"]), id);
    // The last command is named with its subcommand, as in Redis.
    let info: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(info.contains(" cmd=client|info "), "{info}");
}

#[test]
fn client_errors() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["CLIENT"]), "ERR wrong number of arguments for 'client' command");
    assert_eq!(err(&mut c, &["CLIENT", "NO-EVICT", "maybe"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["CLIENT", "FOO"]), "ERR unknown subcommand 'FOO'. Try CLIENT HELP.");
}

#[test]
fn client_list_shows_every_connection() {
    let s = Server::start(&[]);
    // Enough connections that both shards hold some.
    let mut conns: Vec<Connection> = (0..8).map(|_| s.client()).collect();
    let mut ids = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        q::<()>(c, &["CLIENT", "SETNAME", &format!("conn-{i}")]);
        ids.push(q::<i64>(c, &["CLIENT", "ID"]));
    }
    let list: String = q(&mut conns[0], &["CLIENT", "LIST"]);
    for (i, id) in ids.iter().enumerate() {
        let line = list.lines().find(|l| l.starts_with(&format!("id={id} "))).unwrap_or_else(|| panic!("id {id} missing:\n{list}"));
        assert!(line.contains(&format!(" name=conn-{i} ")), "{line}");
        assert!(line.contains(" addr=127.0.0.1:"), "{line}");
    }
    let one: String = q(&mut conns[0], &["CLIENT", "LIST", "ID", &ids[3].to_string()]);
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.contains(" name=conn-3 "));
    let two: String = q(&mut conns[0], &["CLIENT", "LIST", "ID", &ids[3].to_string(), &ids[5].to_string()]);
    assert_eq!(two.lines().count(), 2, "{two}");
    let normal: String = q(&mut conns[0], &["CLIENT", "LIST", "TYPE", "normal"]);
    assert!(normal.lines().count() >= 8);
    assert_eq!(err(&mut conns[0], &["CLIENT", "LIST", "ID", "abc"]), "ERR Invalid client ID");
    assert_eq!(err(&mut conns[0], &["CLIENT", "LIST", "TYPE", "foo"]), "ERR Unknown client type 'foo'");
}

#[test]
fn client_kill_by_id_closes_that_connection() {
    let s = Server::start(&[]);
    let mut killer = s.client();
    // Several victims, so that some live on the other shard.
    let mut victims: Vec<Connection> = (0..6).map(|_| s.client()).collect();
    for victim in &mut victims {
        let id: i64 = q(victim, &["CLIENT", "ID"]);
        assert_eq!(q::<i64>(&mut killer, &["CLIENT", "KILL", "ID", &id.to_string()]), 1);
        assert!(redis::cmd("PING").query::<String>(victim).is_err(), "client {id} still answers after CLIENT KILL");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let list: String = q(&mut killer, &["CLIENT", "LIST"]);
            if !list.lines().any(|l| l.starts_with(&format!("id={id} "))) {
                break;
            }
            assert!(Instant::now() < deadline, "killed client {id} still listed:\n{list}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Killing it again finds nothing.
        assert_eq!(q::<i64>(&mut killer, &["CLIENT", "KILL", "ID", &id.to_string()]), 0);
    }
    assert_eq!(q::<String>(&mut killer, &["PING"]), "PONG");
    // A client does not kill itself by ID (SKIPME yes is the default) unless asked.
    let own: i64 = q(&mut killer, &["CLIENT", "ID"]);
    assert_eq!(q::<i64>(&mut killer, &["CLIENT", "KILL", "ID", &own.to_string()]), 0);
    assert_eq!(q::<String>(&mut killer, &["PING"]), "PONG");
    assert_eq!(err(&mut killer, &["CLIENT", "KILL", "ID", "abc"]), "ERR client-id should be greater than 0");
}

#[test]
fn client_kill_by_address() {
    let s = Server::start(&[]);
    let mut killer = s.client();
    let mut victim = s.client();
    let info: String = q(&mut victim, &["CLIENT", "INFO"]);
    let addr = info.split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string();
    assert_eq!(q::<String>(&mut killer, &["CLIENT", "KILL", &addr]), "OK");
    assert!(redis::cmd("PING").query::<String>(&mut victim).is_err());
    let mut victim2 = s.client();
    let info: String = q(&mut victim2, &["CLIENT", "INFO"]);
    let addr = info.split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string();
    assert_eq!(q::<i64>(&mut killer, &["CLIENT", "KILL", "ADDR", &addr]), 1);
    assert!(redis::cmd("PING").query::<String>(&mut victim2).is_err());
    assert_eq!(q::<i64>(&mut killer, &["CLIENT", "KILL", "ADDR", "1.2.3.4:5"]), 0);
    // The old form answers an error when nothing matches.
    assert_eq!(err(&mut killer, &["CLIENT", "KILL", "1.2.3.4:5"]), "ERR No such client");
}

// ---------------------------------------------------------------- INFO

#[test]
fn info_server_section() {
    let (_s, mut c) = start();
    let all = info(&mut c, None);
    assert_eq!(info_field(&all, "redis_version").as_deref(), Some("7.4.0"));
    assert!(all.contains("# Server\r\n"), "{all}");
    assert!(all.contains("# Clients\r\n"));
    assert!(all.contains("# Keyspace\r\n"));
    assert_eq!(info_field(&all, "redis_mode").as_deref(), Some("standalone"));
    assert_eq!(info_field(&all, "tcp_port"), Some(_s.port.to_string()));
    let server = info(&mut c, Some("server"));
    assert!(server.contains("# Server"));
    assert!(!server.contains("# Keyspace"), "INFO server has other sections:\n{server}");
    let clients = info(&mut c, Some("clients"));
    let n: i64 = info_field(&clients, "connected_clients").unwrap().parse().unwrap();
    assert!(n >= 1);
    let everything = info(&mut c, Some("everything"));
    assert!(everything.contains("# Server") && everything.contains("# Keyspace") && everything.contains("# Stats"));
}

#[test]
fn info_keyspace_sums_every_shard() {
    let (_s, mut c) = start();
    let ks = info(&mut c, Some("keyspace"));
    assert!(ks.starts_with("# Keyspace"), "{ks}");
    assert_eq!(info_field(&ks, "db0"), None, "{ks}");
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET").arg(format!("k:{i}")).arg(i).ignore();
    }
    for i in 0..30 {
        p.cmd("SET").arg(format!("t:{i}")).arg(i).arg("EX").arg(1000).ignore();
    }
    let () = p.query(&mut c).unwrap();
    q::<()>(&mut c, &["SELECT", "4"]);
    q::<()>(&mut c, &["SET", "x", "1"]);
    let ks = info(&mut c, Some("keyspace"));
    let db0 = info_field(&ks, "db0").unwrap_or_else(|| panic!("no db0 line:\n{ks}"));
    assert!(db0.starts_with("keys=230,expires=30"), "db0:{db0}");
    let db4 = info_field(&ks, "db4").unwrap_or_else(|| panic!("no db4 line:\n{ks}"));
    assert!(db4.starts_with("keys=1,expires=0"), "db4:{db4}");
    assert_eq!(info_field(&ks, "db1"), None);
}

// ---------------------------------------------------------------- CONFIG

#[test]
fn config_get_patterns() {
    let (_s, mut c) = start();
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxclients"]), ["maxclients", "10000"]);
    let upper: Vec<String> = q(&mut c, &["CONFIG", "GET", "MAXCLIENTS"]);
    assert_eq!(upper.len(), 2, "{upper:?}");
    assert!(upper[0].eq_ignore_ascii_case("maxclients") && upper[1] == "10000", "{upper:?}");
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "nosuchparam"]), Vec::<String>::new());
    let max: Vec<String> = q(&mut c, &["CONFIG", "GET", "maxmemory*"]);
    assert_eq!(max.len() % 2, 0);
    let names: Vec<&str> = max.iter().step_by(2).map(String::as_str).collect();
    assert!(names.contains(&"maxmemory") && names.contains(&"maxmemory-policy"), "{max:?}");
    assert!(names.iter().all(|n| n.starts_with("maxmemory")), "{max:?}");
    let all: Vec<String> = q(&mut c, &["CONFIG", "GET", "*"]);
    assert_eq!(all.len() % 2, 0);
    assert!(all.len() >= 20, "{all:?}");
    // Several patterns at once, each parameter once.
    let two: Vec<String> = q(&mut c, &["CONFIG", "GET", "maxclients", "port", "max*"]);
    assert_eq!(two.iter().step_by(2).filter(|n| *n == "maxclients").count(), 1, "{two:?}");
    assert!(two.iter().step_by(2).any(|n| n == "port"), "{two:?}");
    let port: Vec<String> = q(&mut c, &["CONFIG", "GET", "port"]);
    assert_eq!(port, ["port".to_string(), _s.port.to_string()]);
    assert_eq!(err(&mut c, &["CONFIG", "GET"]), "ERR wrong number of arguments for 'config|get' command");
    assert_eq!(err(&mut c, &["CONFIG", "FOO"]), "ERR unknown subcommand 'FOO'. Try CONFIG HELP.");
    assert_eq!(err(&mut c, &["CONFIG"]), "ERR wrong number of arguments for 'config' command");
}

#[test]
fn config_set() {
    let (s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["CONFIG", "SET", "maxclients", "500"]), "OK");
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxclients"]), ["maxclients", "500"]);
    // Every connection (on any shard) sees it.
    for _ in 0..4 {
        let mut other = s.client();
        assert_eq!(q::<Vec<String>>(&mut other, &["CONFIG", "GET", "maxclients"]), ["maxclients", "500"]);
    }
    assert_eq!(info_field(&info(&mut c, Some("clients")), "maxclients").as_deref(), Some("500"));
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "nosuchparam", "1"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "maxclients", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
    );
    assert_eq!(err(&mut c, &["CONFIG", "SET", "maxclients"]), "ERR wrong number of arguments for 'config|set' command");
    // All or nothing: a bad pair leaves the good one unset.
    assert!(err(&mut c, &["CONFIG", "SET", "maxclients", "300", "nosuchparam", "1"]).starts_with("ERR"));
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxclients"]), ["maxclients", "500"]);
}

#[test]
fn config_set_with_a_missing_value_is_a_syntax_error() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["CONFIG", "SET", "maxclients", "100", "loglevel"]), "ERR syntax error");
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxclients"]), ["maxclients", "10000"]);
}

#[test]
fn config_resetstat() {
    let (_s, mut c) = start();
    for _ in 0..50 {
        q::<()>(&mut c, &["SET", "k", "v"]);
        let _: Option<String> = q(&mut c, &["GET", "nope"]);
    }
    let before = info(&mut c, Some("stats"));
    let n: u64 = info_field(&before, "total_commands_processed").unwrap().parse().unwrap();
    assert!(n >= 100, "{before}");
    assert!(info_field(&before, "keyspace_misses").unwrap().parse::<u64>().unwrap() >= 50);
    assert_eq!(q::<String>(&mut c, &["CONFIG", "RESETSTAT"]), "OK");
    let after = info(&mut c, Some("stats"));
    let n: u64 = info_field(&after, "total_commands_processed").unwrap().parse().unwrap();
    assert!(n <= 3, "total_commands_processed {n} after CONFIG RESETSTAT");
    assert_eq!(info_field(&after, "keyspace_misses").as_deref(), Some("0"));
    assert_eq!(info_field(&after, "keyspace_hits").as_deref(), Some("0"));
}

// ---------------------------------------------------------------- COMMAND

#[test]
fn command_count_info_docs() {
    let (_s, mut c) = start();
    let count: i64 = q(&mut c, &["COMMAND", "COUNT"]);
    assert!(count >= 60, "COMMAND COUNT {count}");
    let all: Vec<Value> = q(&mut c, &["COMMAND"]);
    assert!(all.len() >= 60, "COMMAND returned {} entries", all.len());
    let list: Vec<String> = q(&mut c, &["COMMAND", "LIST"]);
    // Redis lists subcommands (config|get ...) too.
    assert!(list.len() as i64 >= count, "COMMAND LIST has {} names, COUNT {count}", list.len());
    for name in ["get", "set", "del", "scan", "ping", "info", "config", "client"] {
        assert!(list.iter().any(|n| n == name), "COMMAND LIST lacks {name}");
    }

    let info: Vec<Value> = q(&mut c, &["COMMAND", "INFO", "get", "nosuchcmd", "SET"]);
    assert_eq!(info.len(), 3);
    let Value::Array(get) = &info[0] else { panic!("{:?}", info[0]) };
    assert_eq!(text(&get[0]), "get");
    assert_eq!(get[1], Value::Int(2));
    let flags: Vec<String> = Vec::from_redis_value(&get[2]).unwrap();
    assert!(flags.contains(&"readonly".to_string()) && flags.contains(&"fast".to_string()), "{flags:?}");
    assert_eq!((&get[3], &get[4], &get[5]), (&Value::Int(1), &Value::Int(1), &Value::Int(1)));
    let cats: Vec<String> = Vec::from_redis_value(&get[6]).unwrap();
    assert!(cats.contains(&"@string".to_string()) && cats.contains(&"@read".to_string()), "{cats:?}");
    assert_eq!(info[1], Value::Nil);
    let Value::Array(set) = &info[2] else { panic!("{:?}", info[2]) };
    assert_eq!(text(&set[0]), "set");
    assert_eq!(set[1], Value::Int(-3));
    let flags: Vec<String> = Vec::from_redis_value(&set[2]).unwrap();
    assert!(flags.contains(&"write".to_string()), "{flags:?}");
    let info: Vec<Value> = q(&mut c, &["COMMAND", "INFO", "mset"]);
    let Value::Array(mset) = &info[0] else { panic!("{:?}", info[0]) };
    assert_eq!((&mset[1], &mset[3], &mset[4], &mset[5]), (&Value::Int(-3), &Value::Int(1), &Value::Int(-1), &Value::Int(2)));

    // DOCS: a map from name to a map with the summary (flat pairs in RESP2).
    let docs = q::<Value>(&mut c, &["COMMAND", "DOCS", "get"]);
    let get_doc = field(&docs, "get").unwrap_or_else(|| panic!("{docs:?}"));
    assert_eq!(text(field(get_doc, "summary").unwrap()), "Returns the string value of a key.");
    assert_eq!(text(field(get_doc, "group").unwrap()), "string");
    let docs = q::<Value>(&mut c, &["COMMAND", "DOCS", "nosuchcmd"]);
    assert!(matches!(&docs, Value::Array(v) if v.is_empty()) || matches!(&docs, Value::Map(v) if v.is_empty()), "{docs:?}");

    let keys: Vec<String> = q(&mut c, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]);
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(err(&mut c, &["COMMAND", "FOO"]), "ERR unknown subcommand 'FOO'. Try COMMAND HELP.");
    assert_eq!(err(&mut c, &["COMMAND", "COUNT", "x"]), "ERR wrong number of arguments for 'command|count' command");
}

// ---------------------------------------------------------------- TIME / LASTSAVE / FUNCTION

#[test]
fn time_and_lastsave() {
    let (_s, mut c) = start();
    let (secs, micros): (String, String) = q(&mut c, &["TIME"]);
    let secs: u64 = secs.parse().unwrap();
    let micros: u64 = micros.parse().unwrap();
    assert!(secs.abs_diff(unix_secs()) <= 2, "TIME {secs}, local {}", unix_secs());
    assert!(micros < 1_000_000);
    let last: u64 = q(&mut c, &["LASTSAVE"]);
    assert!(last <= unix_secs() + 1, "LASTSAVE {last} is in the future");
    assert!(last + 3600 > unix_secs(), "LASTSAVE {last} is long ago");
    assert_eq!(err(&mut c, &["TIME", "x"]), "ERR wrong number of arguments for 'time' command");
}

#[test]
fn function_list_is_empty() {
    let (_s, mut c) = start();
    assert_eq!(q::<Vec<Value>>(&mut c, &["FUNCTION", "LIST"]), Vec::<Value>::new());
    assert_eq!(err(&mut c, &["FUNCTION", "FOO"]), "ERR unknown subcommand 'FOO'. Try FUNCTION HELP.");
}

// ---------------------------------------------------------------- unknown commands

#[test]
fn unknown_command() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["nosuchcmd", "a", "b"]), "ERR unknown command 'nosuchcmd', with args beginning with: 'a' 'b' ");
    assert_eq!(err(&mut c, &["nosuchcmd"]), "ERR unknown command 'nosuchcmd', with args beginning with: ");
    assert_eq!(err(&mut c, &["NoSuchCmd", "x"]), "ERR unknown command 'NoSuchCmd', with args beginning with: 'x' ");
    // The connection still works.
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}

// ---------------------------------------------------------------- SHUTDOWN

/// Waits until the process has exited by itself (is a zombie or gone).
fn wait_exited(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
                if state == Some("Z") || state == Some("X") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn shutdown_exits_cleanly_and_keeps_the_data() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &[]);
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..300 {
        p.cmd("SET").arg(format!("k:{i}")).arg(format!("v:{i}")).ignore();
    }
    let () = p.query(&mut c).unwrap();
    assert_eq!(err(&mut c, &["SHUTDOWN", "FOO"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["SHUTDOWN", "ABORT"]), "ERR No shutdown in progress.");
    // Redis closes the connection without a reply; either is fine here.
    let _ = redis::cmd("SHUTDOWN").query::<Value>(&mut c);
    assert!(wait_exited(s.pid(), Duration::from_secs(20)), "strand did not exit after SHUTDOWN; log:\n{}", s.log_text());
    assert!(s.stop(), "strand exited with a failure status after SHUTDOWN; log:\n{}", s.log_text());

    s.restart();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 300);
    for i in [0, 1, 150, 299] {
        assert_eq!(q::<Option<String>>(&mut c, &["GET", &format!("k:{i}")]), Some(format!("v:{i}")));
    }
}

#[test]
fn toml_config_file_sets_flags_and_flags_win() {
    let dir = strand_tests::data_dir();
    let file = dir.path().join("strand.toml");
    std::fs::write(&file, "appendfsync = \"always\"\nmaxclients = 77\nproto_max_bulk_len = \"2mb\"\nloglevel = \"warn\"\n").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start_in(&data, &["--config", file.to_str().unwrap(), "--maxclients", "88"]);
    let mut c = s.client();
    let get = |c: &mut Connection, name: &str| -> String {
        let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
        v[1].clone()
    };
    assert_eq!(get(&mut c, "appendfsync"), "always");
    assert_eq!(get(&mut c, "proto-max-bulk-len"), (2 << 20).to_string());
    assert_eq!(get(&mut c, "maxclients"), "88", "a flag must win over the file");
}

#[test]
fn a_bad_config_file_is_refused_with_its_name() {
    let dir = strand_tests::data_dir();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "appendfsync = \"sometimes\"\n").unwrap();
    let out = std::process::Command::new(strand_tests::binary())
        .args(["--config", file.to_str().unwrap(), "--port", &strand_tests::free_port().to_string()])
        .args(["--dir", dir.path().join("d").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("appendfsync") && err.contains("sometimes"), "{err}");
    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    let out = std::process::Command::new(strand_tests::binary()).args(["--config", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}
