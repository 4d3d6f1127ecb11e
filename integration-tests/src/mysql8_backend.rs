//! A purpose-built MySQL 8 style server for the tests of dbrouterd's `caching_sha2_password`
//! full authentication (no MySQL 8 server is installable here).
//!
//! Its cache is always empty: every login gets `perform_full_authentication` after the
//! fast-auth scramble, and the only way in over plain TCP is the RSA exchange: the client asks
//! for the public key (`0x02`), gets it in PEM, and sends RSA-OAEP(SHA-1)((password + NUL) XOR
//! scramble). The key pair is the server's own, made by `openssl genpkey` at start. With
//! [`Greeting::NativeThenSwitch`] the greeting names `mysql_native_password` and the login is
//! switched to `caching_sha2_password` with a fresh scramble (AuthSwitchRequest), as a MySQL 8
//! account does.
//!
//! After login it answers just enough SQL for dbrouterd's monitor and a client: `SELECT` lists
//! of `@@variables` (`@@server_id` is its own id, `@@read_only` 0, the GTID positions empty),
//! `SHOW SLAVE STATUS` (not a replica), anything on `ha.*` with 1146 (no such table), and OK to
//! the rest; COM_PING, COM_INIT_DB and COM_RESET_CONNECTION get OK. It runs on a runtime
//! thread of its own and stops when dropped.

use crate::child::{OutputWithin, QUICK};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const CACHING_SHA2: &str = "caching_sha2_password";
const NATIVE: &str = "mysql_native_password";

const PROTOCOL_41: u32 = 0x200;
const CONNECT_WITH_DB: u32 = 0x8;
const SECURE_CONNECTION: u32 = 0x8000;
const PLUGIN_AUTH: u32 = 0x8_0000;
const PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
const SESSION_TRACK: u32 = 0x80_0000;
const DEPRECATE_EOF: u32 = 0x100_0000;
/// What the greeting offers: the 4.1 protocol with plugins, and the wire-format flags dbrouterd
/// passes on from its clients.
const OFFERED: u32 = 0x1 // LONG_PASSWORD
    | 0x2 // FOUND_ROWS
    | 0x4 // LONG_FLAG
    | CONNECT_WITH_DB
    | 0x80 // LOCAL_FILES
    | 0x100 // IGNORE_SPACE
    | PROTOCOL_41
    | 0x400 // INTERACTIVE
    | 0x1000 // IGNORE_SIGPIPE
    | 0x2000 // TRANSACTIONS
    | SECURE_CONNECTION
    | 0x1_0000 // MULTI_STATEMENTS
    | 0x2_0000 // MULTI_RESULTS
    | 0x4_0000 // PS_MULTI_RESULTS
    | PLUGIN_AUTH
    | 0x10_0000 // CONNECT_ATTRS
    | PLUGIN_AUTH_LENENC
    | SESSION_TRACK
    | DEPRECATE_EOF;
const AUTOCOMMIT: u16 = 0x0002;

/// Which plugin the greeting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// `caching_sha2_password` from the start.
    CachingSha2,
    /// `mysql_native_password`, then an AuthSwitchRequest to `caching_sha2_password`.
    NativeThenSwitch,
}

#[derive(Debug, Default)]
struct Counters {
    /// Logins that passed the RSA full authentication.
    rsa_logins: AtomicU64,
    /// Logins refused (wrong password, unknown user, cleartext without TLS).
    refused: AtomicU64,
}

struct Server {
    server_id: u32,
    greeting: Greeting,
    users: HashMap<Vec<u8>, Vec<u8>>,
    key: RsaPrivateKey,
    public_pem: String,
    counters: Arc<Counters>,
}

/// The running server; see the [module docs](self).
pub struct Mysql8Backend {
    pub addr: SocketAddr,
    pub server_id: u32,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Mysql8Backend {
    /// Starts on `127.0.0.1:0` with these `(user, password)` accounts, its key pair made in
    /// `dir`.
    pub fn start(
        dir: &Path,
        server_id: u32,
        greeting: Greeting,
        users: &[(&str, &str)],
    ) -> Result<Mysql8Backend> {
        let key_file = dir.join(format!("mysql8-{server_id}-private.pem"));
        let out = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key_file)
            .output_within(QUICK)
            .context("run openssl genpkey")?;
        if !out.status.success() {
            bail!("openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
        }
        let pem = std::fs::read_to_string(&key_file).context("read the private key")?;
        let key = RsaPrivateKey::from_pkcs8_pem(&pem).context("parse the private key")?;
        let public_pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .context("encode the public key")?;
        let counters = Arc::new(Counters::default());
        let server = Arc::new(Server {
            server_id,
            greeting,
            users: users
                .iter()
                .map(|(u, p)| (u.as_bytes().to_vec(), p.as_bytes().to_vec()))
                .collect(),
            key,
            public_pem,
            counters: counters.clone(),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                let accept = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        let server = server.clone();
                        tokio::spawn(async move {
                            let _ = serve(&server, stream).await;
                        });
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = accept => {}
                }
            });
        });
        Ok(Mysql8Backend {
            addr,
            server_id,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Logins that went through the RSA full authentication.
    pub fn rsa_logins(&self) -> u64 {
        self.counters.rsa_logins.load(Ordering::Relaxed)
    }

    /// Logins refused.
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Mysql8Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One client connection's framing.
struct Conn {
    stream: TcpStream,
    seq: u8,
    caps: u32,
}

impl Conn {
    async fn read(&mut self) -> Result<Vec<u8>> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await?;
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        if header[3] != self.seq {
            bail!("sequence id {} where {} was due", header[3], self.seq);
        }
        self.seq = self.seq.wrapping_add(1);
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload).await?;
        Ok(payload)
    }

    async fn write(&mut self, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        let mut bytes = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq];
        bytes.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    async fn ok(&mut self) -> Result<()> {
        let p = self.ok_payload(0x00);
        self.write(&p).await
    }

    fn ok_payload(&self, header: u8) -> Vec<u8> {
        let mut p = vec![header, 0, 0];
        p.extend_from_slice(&AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        if self.caps & SESSION_TRACK != 0 {
            p.push(0); // empty info, lenenc
        }
        p
    }

    async fn err(&mut self, code: u16, state: &str, message: &str) -> Result<()> {
        let mut p = vec![0xFF];
        p.extend_from_slice(&code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(state.as_bytes());
        p.extend_from_slice(message.as_bytes());
        self.write(&p).await
    }

    /// A text result set of one row.
    async fn row(&mut self, columns: &[(String, String)]) -> Result<()> {
        self.write(&lenenc(columns.len() as u64)).await?;
        for (name, _) in columns {
            let mut def = Vec::new();
            for field in [&b"def"[..], b"", b"", b"", name.as_bytes(), name.as_bytes()] {
                put_lenenc_str(&mut def, field);
            }
            def.push(0x0C);
            def.extend_from_slice(&33u16.to_le_bytes()); // utf8_general_ci
            def.extend_from_slice(&255u32.to_le_bytes());
            def.push(0xFD); // VAR_STRING
            def.extend_from_slice(&0u16.to_le_bytes());
            def.extend_from_slice(&[0, 0, 0]);
            self.write(&def).await?;
        }
        let deprecate_eof = self.caps & DEPRECATE_EOF != 0;
        let eof = {
            let mut e = vec![0xFE, 0, 0];
            e.extend_from_slice(&AUTOCOMMIT.to_le_bytes());
            e
        };
        if !deprecate_eof {
            self.write(&eof).await?;
        }
        let mut row = Vec::new();
        for (_, value) in columns {
            put_lenenc_str(&mut row, value.as_bytes());
        }
        self.write(&row).await?;
        if deprecate_eof {
            let p = self.ok_payload(0xFE);
            self.write(&p).await
        } else {
            self.write(&eof).await
        }
    }
}

fn lenenc(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xFFFF => vec![0xFC, n as u8, (n >> 8) as u8],
        _ => {
            let mut v = vec![0xFD];
            v.extend_from_slice(&n.to_le_bytes()[..3]);
            v
        }
    }
}

fn put_lenenc_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&lenenc(s.len() as u64));
    buf.extend_from_slice(s);
}

fn scramble() -> [u8; 20] {
    let mut s: [u8; 20] = rand::random();
    for b in &mut s {
        *b = (*b & 0x7F).max(1);
        if *b == b'$' {
            *b += 1;
        }
    }
    s
}

/// The parts of a HandshakeResponse41 the server needs.
struct Response {
    caps: u32,
    user: Vec<u8>,
}

fn parse_response(p: &[u8]) -> Result<Response> {
    let caps = u32::from_le_bytes(p.get(..4).context("short response")?.try_into()?);
    if caps & PROTOCOL_41 == 0 {
        bail!("pre-4.1 client");
    }
    let rest = p.get(32..).context("short response")?;
    let nul = rest.iter().position(|&b| b == 0).context("user name")?;
    Ok(Response {
        caps,
        user: rest[..nul].to_vec(),
    })
}

async fn serve(server: &Server, stream: TcpStream) -> Result<()> {
    let mut conn = Conn {
        stream,
        seq: 0,
        caps: 0,
    };
    let mut nonce = scramble();
    let plugin = match server.greeting {
        Greeting::CachingSha2 => CACHING_SHA2,
        Greeting::NativeThenSwitch => NATIVE,
    };
    let mut greeting = vec![10];
    greeting.extend_from_slice(b"8.0.36-mysql8-test\0");
    greeting.extend_from_slice(&server.server_id.to_le_bytes());
    greeting.extend_from_slice(&nonce[..8]);
    greeting.push(0);
    greeting.extend_from_slice(&(OFFERED as u16).to_le_bytes());
    greeting.push(255); // utf8mb4_0900_ai_ci
    greeting.extend_from_slice(&AUTOCOMMIT.to_le_bytes());
    greeting.extend_from_slice(&((OFFERED >> 16) as u16).to_le_bytes());
    greeting.push(21);
    greeting.extend_from_slice(&[0; 10]);
    greeting.extend_from_slice(&nonce[8..]);
    greeting.push(0);
    greeting.extend_from_slice(plugin.as_bytes());
    greeting.push(0);
    conn.write(&greeting).await?;

    let response = parse_response(&conn.read().await?)?;
    conn.caps = response.caps & OFFERED;
    if server.greeting == Greeting::NativeThenSwitch {
        nonce = scramble();
        let mut switch = vec![0xFE];
        switch.extend_from_slice(CACHING_SHA2.as_bytes());
        switch.push(0);
        switch.extend_from_slice(&nonce);
        switch.push(0);
        conn.write(&switch).await?;
        // The fast-auth scramble: of no use with an empty cache.
        conn.read().await?;
    }
    conn.write(&[0x01, 0x04]).await?; // perform_full_authentication
    let answer = conn.read().await?;
    let password = if answer == [0x02] {
        let mut key = vec![0x01];
        key.extend_from_slice(server.public_pem.as_bytes());
        conn.write(&key).await?;
        let encrypted = conn.read().await?;
        match server.key.decrypt(Oaep::new::<sha1::Sha1>(), &encrypted) {
            Ok(mut plain) => {
                for (b, s) in plain.iter_mut().zip(nonce.iter().cycle()) {
                    *b ^= s;
                }
                plain.strip_suffix(&[0]).map(<[u8]>::to_vec)
            }
            Err(_) => None,
        }
    } else {
        // A cleartext password over plain TCP: MySQL refuses it, so do we.
        None
    };
    let known = server.users.get(&response.user);
    if password.is_none() || known != password.as_ref() {
        server.counters.refused.fetch_add(1, Ordering::Relaxed);
        let user = String::from_utf8_lossy(&response.user).into_owned();
        return conn
            .err(
                1045,
                "28000",
                &format!("Access denied for user '{user}'@'localhost' (using password: YES)"),
            )
            .await;
    }
    server.counters.rsa_logins.fetch_add(1, Ordering::Relaxed);
    conn.ok().await?;

    loop {
        conn.seq = 0;
        let command = match conn.read().await {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        match command.first() {
            Some(0x01) => return Ok(()),
            Some(0x03) => {
                let sql = String::from_utf8_lossy(&command[1..]).to_lowercase();
                answer_query(server, &mut conn, sql.trim()).await?;
            }
            Some(0x02 | 0x0E | 0x1F) => conn.ok().await?,
            _ => conn.err(1047, "08S01", "Unknown command").await?,
        }
    }
}

async fn answer_query(server: &Server, conn: &mut Conn, sql: &str) -> Result<()> {
    if sql.contains("ha.") {
        return conn
            .err(1146, "42S02", "Table 'ha.topology' doesn't exist")
            .await;
    }
    let Some(list) = sql.strip_prefix("select ") else {
        return conn.ok().await;
    };
    let list = list
        .split(" from ")
        .next()
        .unwrap_or_default()
        .split(" limit ")
        .next()
        .unwrap_or_default();
    let columns: Vec<(String, String)> = list
        .split(',')
        .map(|expr| {
            let expr = expr.trim();
            let value = if expr.contains("server_id") {
                server.server_id.to_string()
            } else if expr.contains("read_only") {
                "0".to_string()
            } else if expr.contains("gtid") {
                String::new()
            } else if expr.contains("version_comment") {
                "mysql8 test server".to_string()
            } else {
                expr.to_string()
            };
            (expr.to_string(), value)
        })
        .collect();
    conn.row(&columns).await
}
