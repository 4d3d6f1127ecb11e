//! The control socket server: binding (with stale-socket and second-instance detection),
//! authorization of each command, and the line protocol with its limits.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::auth::{Caller, Groups};
use super::protocol::{
    Access, CommandError, ErrorKind, Request, Response, MAX_LINE_BYTES, PROTOCOL_VERSION,
};
use crate::config::ControlConfig;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A daemon's commands. `hello` and `commands` are answered by the server itself.
pub trait CommandHandler: Send + Sync + 'static {
    /// Every command this daemon answers, with the access it needs.
    fn commands(&self) -> Vec<(&'static str, Access)>;

    /// Runs `cmd`; called only after the caller was authorized for it.
    fn call<'a>(
        &'a self,
        cmd: &'a str,
        args: &'a Map<String, Value>,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Value, CommandError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another {daemon} is already running: it answers on {}", path.display())]
    AlreadyRunning { daemon: String, path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot create socket directory {}: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot replace stale socket {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot listen on control socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot set owner or mode of {}: {source}", path.display())]
    Permissions { path: PathBuf, source: io::Error },
    #[error("metrics registration failed: {0}")]
    Metrics(#[from] prometheus::Error),
}

struct Counters {
    requests: IntCounterVec,
    refused: IntCounter,
    bad_requests: IntCounter,
}

impl Counters {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "ha_control_requests_total",
                "Control requests answered, by result",
            ),
            &["result"],
        )?;
        let refused = IntCounter::new(
            "ha_control_refused_total",
            "Changing commands refused to non-admin callers",
        )?;
        let bad_requests = IntCounter::new(
            "ha_control_bad_requests_total",
            "Control lines that were not valid requests (bad JSON, too long, unknown command)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(bad_requests.clone()))?;
        Ok(Counters {
            requests,
            refused,
            bad_requests,
        })
    }
}

/// A bound control socket, ready to [`serve`](ControlServer::serve).
pub struct ControlServer {
    daemon: &'static str,
    listener: UnixListener,
    path: PathBuf,
    groups: Groups,
    idle_timeout: Duration,
    counters: Arc<Counters>,
    /// Inode of the socket file we bound, to remove only our own file at exit.
    inode: u64,
}

impl ControlServer {
    /// Creates the socket directory, refuses to start when another instance answers on the
    /// socket, replaces a stale socket file, and binds with mode 0660 and the configured group.
    pub async fn bind(
        daemon: &'static str,
        cfg: &ControlConfig,
        registry: &Registry,
    ) -> Result<Self, ServerError> {
        let path = cfg.socket_path(daemon);
        if let Some(dir) = path.parent() {
            create_socket_dir(dir)?;
        }
        remove_if_stale(daemon, &path).await?;
        let listener = UnixListener::bind(&path).map_err(|source| ServerError::Bind {
            path: path.clone(),
            source,
        })?;
        set_permissions(&path, cfg)?;
        let inode = std::fs::symlink_metadata(&path)
            .map(|m| m.ino())
            .unwrap_or(0);
        let groups = Groups::resolve(cfg.admin_group.as_deref());
        let counters = Arc::new(Counters::register(registry)?);
        info!(socket = %path.display(), "control socket listening");
        Ok(ControlServer {
            daemon,
            listener,
            path,
            groups,
            idle_timeout: cfg.idle_timeout.get(),
            counters,
            inode,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` is cancelled, then removes the socket file.
    pub async fn serve(self, handler: Arc<dyn CommandHandler>, shutdown: CancellationToken) {
        let shared = Arc::new(Shared {
            daemon: self.daemon,
            groups: self.groups,
            idle_timeout: self.idle_timeout,
            counters: self.counters,
            handler,
        });
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let shared = shared.clone();
                        let stop = shutdown.clone();
                        tokio::spawn(async move { shared.connection(stream, stop).await });
                    }
                    Err(e) => {
                        warn!(error = %e, "control accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        // Remove the file only if it is still ours (an upgraded process may have replaced it).
        if std::fs::symlink_metadata(&self.path).map(|m| m.ino()).ok() == Some(self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn create_socket_dir(dir: &Path) -> Result<(), ServerError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| ServerError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        ServerError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        }
    })
}

async fn remove_if_stale(daemon: &str, path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    let probe = tokio::time::timeout(Duration::from_secs(1), UnixStream::connect(path)).await;
    match probe {
        Ok(Ok(_)) | Err(_) => Err(ServerError::AlreadyRunning {
            daemon: daemon.to_string(),
            path: path.to_path_buf(),
        }),
        Ok(Err(e)) => {
            debug!(socket = %path.display(), error = %e, "replacing stale control socket");
            std::fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

fn set_permissions(path: &Path, cfg: &ControlConfig) -> Result<(), ServerError> {
    let err = |source| ServerError::Permissions {
        path: path.to_path_buf(),
        source,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    let group = cfg.group.as_deref().or(cfg.admin_group.as_deref());
    if let Some(name) = group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => {
                nix::unistd::chown(path, None, Some(g.gid)).map_err(|e| err(io::Error::from(e)))?
            }
            _ => {
                warn!(group = name, socket = %path.display(), "socket group does not exist; socket keeps the daemon's group")
            }
        }
    }
    Ok(())
}

struct Shared {
    daemon: &'static str,
    groups: Groups,
    idle_timeout: Duration,
    counters: Arc<Counters>,
    handler: Arc<dyn CommandHandler>,
}

/// Outcome of reading one line with the length cap.
enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

impl Shared {
    async fn connection(self: Arc<Self>, stream: UnixStream, shutdown: CancellationToken) {
        let caller = match stream.peer_cred() {
            Ok(c) => Caller {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid(),
            },
            Err(e) => {
                warn!(error = %e, "cannot read control peer credentials; closing");
                return;
            }
        };
        let span = tracing::debug_span!("control", uid = caller.uid, pid = caller.pid);
        async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let line = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = tokio::time::timeout(self.idle_timeout, read_capped_line(&mut reader)) => match r {
                        Err(_) => { debug!("idle control connection closed"); break; }
                        Ok(Err(e)) => { debug!(error = %e, "control read failed"); break; }
                        Ok(Ok(line)) => line,
                    },
                };
                let response = match line {
                    Line::Eof => break,
                    Line::TooLong => {
                        self.counters.bad_requests.inc();
                        Response::err(CommandError::new(
                            ErrorKind::LineTooLong,
                            format!("request longer than {MAX_LINE_BYTES} bytes"),
                        ))
                    }
                    Line::Text(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                    Line::Text(bytes) => self.answer(&bytes, &caller).await,
                };
                let result = if response.ok { "ok" } else { "error" };
                self.counters.requests.with_label_values(&[result]).inc();
                let mut out = match serde_json::to_vec(&response) {
                    Ok(v) => v,
                    Err(e) => format!(r#"{{"ok":false,"error":{{"kind":"failed","message":"{e}"}}}}"#).into_bytes(),
                };
                out.push(b'\n');
                if write.write_all(&out).await.is_err() {
                    break;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn answer(&self, line: &[u8], caller: &Caller) -> Response {
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.counters.bad_requests.inc();
                return Response::err(CommandError::new(
                    ErrorKind::BadRequest,
                    format!("not a valid request: {e}"),
                ));
            }
        };
        match request.cmd.as_str() {
            "hello" => {
                return Response::ok(json!({
                    "name": self.daemon,
                    "version": env!("CARGO_PKG_VERSION"),
                    "protocol": PROTOCOL_VERSION,
                    "pid": std::process::id(),
                }))
            }
            "commands" => {
                let list: Vec<Value> = self
                    .handler
                    .commands()
                    .into_iter()
                    .map(|(name, access)| json!({"name": name, "admin": access == Access::Admin}))
                    .collect();
                return Response::ok(Value::Array(list));
            }
            _ => {}
        }
        let access = self
            .handler
            .commands()
            .into_iter()
            .find(|(name, _)| *name == request.cmd)
            .map(|(_, a)| a);
        let Some(access) = access else {
            self.counters.bad_requests.inc();
            return Response::err(CommandError::new(
                ErrorKind::UnknownCommand,
                format!(
                    "{} has no command {:?}; `commands` lists them",
                    self.daemon, request.cmd
                ),
            ));
        };
        if access == Access::Admin && !self.groups.is_admin(caller) {
            self.counters.refused.inc();
            warn!(cmd = %request.cmd, uid = caller.uid, pid = caller.pid, "refused changing command from non-admin caller");
            return Response::err(CommandError::new(
                ErrorKind::Forbidden,
                format!(
                    "{} changes state: only root or the admin group may run it",
                    request.cmd
                ),
            ));
        }
        if access == Access::Admin {
            let args = Value::Object(request.args.clone());
            info!(cmd = %request.cmd, uid = caller.uid, args = %args, "control command");
        }
        match self.handler.call(&request.cmd, &request.args, caller).await {
            Ok(data) => Response::ok(data),
            Err(e) => Response::err(e),
        }
    }
}

/// Reads one `\n`-terminated line of at most [`MAX_LINE_BYTES`]; a longer line is consumed to
/// its end and reported as too long, so the connection stays usable.
async fn read_capped_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + used > MAX_LINE_BYTES {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}
