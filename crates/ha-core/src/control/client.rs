//! The control channel client: typed calls with a timeout, used by `hactl` and by vrrpd's
//! tracking of other daemons (which keeps one connection open and polls `health` often).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::protocol::{CommandError, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not running, no socket at {}", path.display())]
    NoSocket { path: PathBuf },
    #[error("not running, socket {} present but nobody answers", path.display())]
    NotAnswering { path: PathBuf },
    #[error("permission denied on {}", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("no answer within {timeout:?}")]
    Timeout { timeout: Duration },
    #[error("connection closed before an answer")]
    Closed,
    #[error("i/o error on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("answer is not valid: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    Command(#[from] CommandError),
}

/// A connection to one daemon's control socket, reconnected on demand.
pub struct ControlClient {
    path: PathBuf,
    timeout: Duration,
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl ControlClient {
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> Self {
        ControlClient {
            path: path.into(),
            timeout,
            conn: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends `cmd` with `args` and waits for the answer, at most the timeout in all
    /// (connecting included). A failed call drops the connection; the next one reconnects.
    pub async fn call(
        &mut self,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(cmd, args)).await {
            Ok(Ok(v)) => v.into_result().map_err(ClientError::from),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(ClientError::Timeout { timeout })
            }
        }
    }

    /// One call on a fresh connection.
    pub async fn call_once(
        path: &Path,
        cmd: &str,
        args: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        ControlClient::new(path, timeout).call(cmd, args).await
    }

    async fn exchange(
        &mut self,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Result<Response, ClientError> {
        if self.conn.is_none() {
            let stream = UnixStream::connect(&self.path)
                .await
                .map_err(|e| self.connect_error(e))?;
            let (r, w) = stream.into_split();
            self.conn = Some((BufReader::new(r), w));
        }
        let path = self.path.clone();
        let io_err = |source| ClientError::Io {
            path: path.clone(),
            source,
        };
        let Some((reader, writer)) = self.conn.as_mut() else {
            return Err(ClientError::Closed);
        };
        let mut line = serde_json::to_vec(&Request {
            cmd: cmd.to_string(),
            args,
        })
        .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        line.push(b'\n');
        writer.write_all(&line).await.map_err(io_err)?;
        let mut answer = Vec::new();
        let n = reader
            .read_until(b'\n', &mut answer)
            .await
            .map_err(io_err)?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        serde_json::from_slice(&answer).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    fn connect_error(&self, e: io::Error) -> ClientError {
        let path = self.path.clone();
        match e.kind() {
            io::ErrorKind::NotFound => ClientError::NoSocket { path },
            io::ErrorKind::ConnectionRefused => ClientError::NotAnswering { path },
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path },
            _ => ClientError::Io { path, source: e },
        }
    }
}
