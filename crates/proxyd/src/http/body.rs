//! Bodies as they stream through proxyd, without buffering whole bodies.
//!
//! [`RequestBody`] is the client's body on its way upstream. It takes the client's stream out
//! of a shared slot only when the upstream connection first asks for data, so after a failed
//! attempt proxyd can tell whether any of the body was sent: if the slot still holds it, the
//! request can be replayed to the next server unchanged.
//!
//! [`ClientBody`] is what a client sends: hyper's stream (HTTP/2, TLS) or the stream of
//! proxyd's own HTTP/1.1 server ([`super::h1`]).
//!
//! [`ResponseBody`] is what goes back to the client: the server's stream (holding the
//! server's in-flight count until it ends, and giving the upstream connection back to its
//! keep-alive pool once read to its end) or a short body proxyd wrote itself.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::h1::response_body::ResponseStream;
use super::h1::RequestStream;
use super::proxy::BodyFailures;
use crate::pool::InFlight;

use super::access::PendingLog;
use crate::access_log::{AccessLogger, Entry};

/// Errors of bodies streaming through proxyd.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client's request body, from whichever server read its head.
#[derive(Debug)]
pub enum ClientBody {
    Hyper(Incoming),
    H1(RequestStream),
}

impl ClientBody {
    pub fn empty() -> Self {
        ClientBody::H1(RequestStream::empty())
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
            ClientBody::H1(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(body) => body.is_end_stream(),
            ClientBody::H1(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(body) => body.size_hint(),
            ClientBody::H1(body) => body.size_hint(),
        }
    }
}

/// The client's body, shared between attempts; see the [module docs](self). An empty body
/// (most requests) needs no shared slot.
#[derive(Debug, Clone)]
pub struct ReplayableBody {
    slot: Option<Arc<Mutex<Option<ClientBody>>>>,
    hint: SizeHint,
}

impl ReplayableBody {
    pub fn new(body: ClientBody) -> Self {
        let hint = body.size_hint();
        let slot = (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Some(body))));
        Self { slot, hint }
    }

    /// Whether nothing of the body has been sent yet (always true for an empty body).
    pub fn untouched(&self) -> bool {
        self.slot.as_ref().is_none_or(|slot| {
            slot.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
        })
    }

    /// A body for one attempt.
    pub fn attempt(&self) -> RequestBody {
        let empty = self.slot.is_none();
        RequestBody {
            source: if empty { None } else { Some(self.clone()) },
            taken: None,
            hint: self.hint,
            done: empty,
        }
    }

    /// Takes the stream out of the slot, e.g. for an upgrade request sent once.
    pub fn take(&self) -> Option<ClientBody> {
        self.slot
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// One attempt's view of a [`ReplayableBody`].
#[derive(Debug)]
pub struct RequestBody {
    source: Option<ReplayableBody>,
    taken: Option<ClientBody>,
    hint: SizeHint,
    done: bool,
}

impl RequestBody {
    /// Whether nothing of the body has been taken by this attempt or another one, so it can
    /// still be sent (again).
    pub fn untouched(&self) -> bool {
        self.taken.is_none() && !(self.done && self.source.is_some())
    }

    pub fn empty() -> Self {
        Self {
            source: None,
            taken: None,
            hint: SizeHint::with_exact(0),
            done: true,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.taken.is_none() {
            self.taken = self.source.as_ref().and_then(ReplayableBody::take);
        }
        let Some(body) = self.taken.as_mut() else {
            self.done = true;
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.taken.as_ref().is_some_and(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// A server's answer on its way to the client; see the [module docs](self).
#[derive(Debug)]
pub struct UpstreamBody {
    source: Source,
    in_flight: Option<InFlight>,
    /// The access-log line written when this body ends (when the access log is on).
    /// Boxed: only requests logged pay for it.
    log: Option<Box<PendingLog>>,
    /// Where a read timeout of a raw HTTP/1.1 body is counted (passive health, metrics).
    failures: Option<BodyFailures>,
}

#[derive(Debug)]
enum Source {
    /// From a raw keep-alive connection ([`super::h1::upstream`]).
    H1(ResponseStream),
    /// From hyper's client (the answer to an upgrade request that was not upgraded); its
    /// connection is not reused.
    Hyper(Incoming),
}

impl UpstreamBody {
    pub fn h1(body: ResponseStream, in_flight: InFlight, failures: BodyFailures) -> Self {
        Self {
            source: Source::H1(body),
            in_flight: Some(in_flight),
            log: None,
            failures: Some(failures),
        }
    }

    pub fn hyper(body: Incoming, in_flight: InFlight) -> Self {
        Self {
            source: Source::Hyper(body),
            in_flight: Some(in_flight),
            log: None,
            failures: None,
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body not read to its end leaves its connection mid-message: closed, not reused.
        if let (Source::H1(body), Some(in_flight)) = (&mut self.source, self.in_flight.as_ref()) {
            if let Some(conn) = body.reusable() {
                in_flight.server().connections().put_back(conn);
            }
        }
    }
}

/// The body proxyd answers a client with.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream(UpstreamBody),
    Short(Option<Bytes>),
}

impl ResponseBody {
    /// A server's header lines to write after the response's own headers (raw from an
    /// HTTP/1.1 server, see [`super::h1::upstream`]); empty for other bodies.
    pub fn header_lines(&self) -> &[u8] {
        match self {
            ResponseBody::Upstream(UpstreamBody {
                source: Source::H1(body),
                ..
            }) => body.headers(),
            _ => &[],
        }
    }

    /// Moves a server's raw header lines into `headers` (for hyper's server).
    pub fn move_header_lines(&mut self, headers: &mut hyper::HeaderMap) {
        if let ResponseBody::Upstream(UpstreamBody {
            source: Source::H1(body),
            ..
        }) = self
        {
            super::h1::upstream::append_header_lines(&body.take_headers(), headers);
        }
    }

    pub fn text(text: impl Into<Bytes>) -> Self {
        ResponseBody::Short(Some(text.into()))
    }

    pub fn empty() -> Self {
        ResponseBody::Short(None)
    }

    /// Writes `entry` to the access log: when the body ends for a server's answer, at once
    /// for proxyd's own short ones (their length is known).
    pub fn log_at_end(&mut self, logger: &AccessLogger, entry: Entry) {
        match self {
            ResponseBody::Upstream(up) => {
                up.log = Some(Box::new(PendingLog::new(logger.clone(), entry)));
            }
            ResponseBody::Short(_) => logger.log(entry),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(up) => {
                let polled = match &mut up.source {
                    Source::H1(body) => {
                        let polled = Pin::new(body).poll_frame(cx);
                        if let Poll::Ready(Some(Err(e))) = &polled {
                            if e.kind() == std::io::ErrorKind::TimedOut {
                                if let (Some(failures), Some(in_flight)) =
                                    (up.failures.as_ref(), up.in_flight.as_ref())
                                {
                                    failures.timed_out(in_flight.server(), &e.to_string());
                                }
                            }
                        }
                        polled.map(|f| f.map(|r| r.map_err(BoxError::from)))
                    }
                    Source::Hyper(body) => Pin::new(body)
                        .poll_frame(cx)
                        .map(|f| f.map(|r| r.map_err(BoxError::from))),
                };
                if let Some(log) = up.log.as_mut() {
                    match &polled {
                        Poll::Ready(Some(Ok(frame))) => {
                            log.sent(frame.data_ref().map_or(0, Bytes::len));
                        }
                        Poll::Ready(None) => log.end(),
                        _ => {}
                    }
                }
                polled
            }
            ResponseBody::Short(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(up) => match &up.source {
                Source::H1(body) => body.is_end_stream(),
                Source::Hyper(body) => body.is_end_stream(),
            },
            ResponseBody::Short(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(up) => match &up.source {
                Source::H1(body) => body.size_hint(),
                Source::Hyper(body) => body.size_hint(),
            },
            ResponseBody::Short(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
