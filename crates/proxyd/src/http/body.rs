//! Bodies as they stream through proxyd, without buffering whole bodies.
//!
//! [`RequestBody`] is the client's body on its way upstream. It takes the client's stream out
//! of a shared slot only when the upstream connection first asks for data, so after a failed
//! attempt proxyd can tell whether any of the body was sent: if the slot still holds it, the
//! request can be replayed to the next server unchanged.
//!
//! [`ResponseBody`] is what goes back to the client: the server's stream (holding the
//! server's in-flight count until it ends) or a short body proxyd wrote itself.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::pool::InFlight;

/// The client's body, shared between attempts; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ReplayableBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    hint: SizeHint,
    empty: bool,
}

impl ReplayableBody {
    pub fn new(body: Incoming) -> Self {
        let empty = body.is_end_stream();
        let hint = body.size_hint();
        Self {
            slot: Arc::new(Mutex::new(Some(body))),
            hint,
            empty,
        }
    }

    /// Whether nothing of the body has been sent yet (always true for an empty body).
    pub fn untouched(&self) -> bool {
        self.empty
            || self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
    }

    /// A body for one attempt.
    pub fn attempt(&self) -> RequestBody {
        RequestBody {
            source: if self.empty { None } else { Some(self.clone()) },
            taken: None,
            hint: self.hint,
            done: self.empty,
        }
    }

    /// Takes the stream out of the slot, e.g. for an upgrade request sent once.
    pub fn take(&self) -> Option<Incoming> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// One attempt's view of a [`ReplayableBody`].
#[derive(Debug)]
pub struct RequestBody {
    source: Option<ReplayableBody>,
    taken: Option<Incoming>,
    hint: SizeHint,
    done: bool,
}

impl RequestBody {
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
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
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

/// The body proxyd answers a client with.
#[derive(Debug)]
pub enum ResponseBody {
    Upstream {
        body: Incoming,
        _in_flight: Option<InFlight>,
    },
    Short(Option<Bytes>),
}

impl ResponseBody {
    pub fn text(text: impl Into<Bytes>) -> Self {
        ResponseBody::Short(Some(text.into()))
    }

    pub fn empty() -> Self {
        ResponseBody::Short(None)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
            ResponseBody::Short(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
            ResponseBody::Short(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream { body, .. } => body.size_hint(),
            ResponseBody::Short(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
