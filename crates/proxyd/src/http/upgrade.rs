//! Upgraded connections (WebSocket and other `Upgrade` protocols): once the server answered
//! 101, the client's and the server's connections are joined byte for byte until either
//! side closes.
//!
//! The client's side comes from whichever server read the request: hyper's upgrade for
//! HTTP/2 and TLS connections, or the socket itself from proxyd's HTTP/1.1 server, which
//! hands it over through a [`H1Upgrade`] slot in the request's extensions once the 101 is
//! written.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tracing::debug;

use super::h1::Rewind;
use crate::pool::InFlight;
use crate::tcp::copy::relay_streams;

/// Where proxyd's HTTP/1.1 server delivers the client's connection after a 101.
#[derive(Debug, Clone)]
pub struct H1Upgrade(Arc<Mutex<Option<oneshot::Receiver<Rewind>>>>);

impl H1Upgrade {
    pub fn new(receiver: oneshot::Receiver<Rewind>) -> Self {
        Self(Arc::new(Mutex::new(Some(receiver))))
    }
}

/// The client's side of an upgrade, once it completes.
#[derive(Debug)]
pub enum ClientUpgrade {
    Hyper(OnUpgrade),
    H1(oneshot::Receiver<Rewind>),
}

impl ClientUpgrade {
    /// The client side of `req`'s upgrade.
    pub fn of<B>(req: &mut Request<B>) -> Self {
        let h1 = req
            .extensions()
            .get::<H1Upgrade>()
            .and_then(|slot| slot.0.lock().unwrap_or_else(PoisonError::into_inner).take());
        match h1 {
            Some(receiver) => ClientUpgrade::H1(receiver),
            None => ClientUpgrade::Hyper(hyper::upgrade::on(req)),
        }
    }
}

/// Joins the two upgraded connections in a task of their own, until both sides closed or
/// nothing moved either way for `idle` (the listener's `idle_timeout`, as for a TCP session);
/// the server's in-flight count is held until the tunnel ends.
pub fn tunnel(client: ClientUpgrade, server: OnUpgrade, in_flight: InFlight, idle: Duration) {
    tokio::spawn(async move {
        let server = match server.await {
            Ok(server) => server,
            Err(e) => {
                debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let server = TokioIo::new(server);
        let copied = match client {
            ClientUpgrade::Hyper(client) => match client.await {
                Ok(client) => relay_streams(TokioIo::new(client), server, idle).await,
                Err(e) => {
                    debug!(error = %e, "upgrade did not complete");
                    return;
                }
            },
            ClientUpgrade::H1(client) => match client.await {
                Ok(client) => relay_streams(client, server, idle).await,
                Err(_) => {
                    debug!("client connection closed before the upgrade");
                    return;
                }
            },
        };
        match copied {
            Ok(relayed) => debug!(
                server = in_flight.server().address(),
                up = relayed.client_to_server,
                down = relayed.server_to_client,
                idle_timeout = relayed.idle_timeout,
                "upgraded connection closed"
            ),
            Err(e) => debug!(error = %e, "upgraded connection ended with an error"),
        }
        drop(in_flight);
    });
}
