//! Upgraded connections (WebSocket and other `Upgrade` protocols): once the server answered
//! 101, the client's and the server's connections are joined byte for byte until either
//! side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::pool::InFlight;

/// Joins the two upgraded connections in a task of their own; the server's in-flight count
/// is held until the tunnel ends.
pub fn tunnel(client: OnUpgrade, server: OnUpgrade, in_flight: InFlight) {
    tokio::spawn(async move {
        let (client, server) = match tokio::try_join!(client, server) {
            Ok(both) => both,
            Err(e) => {
                debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        match tokio::io::copy_bidirectional(&mut client, &mut server).await {
            Ok((up, down)) => debug!(
                server = in_flight.server().address(),
                up, down, "upgraded connection closed"
            ),
            Err(e) => debug!(error = %e, "upgraded connection ended with an error"),
        }
        drop(in_flight);
    });
}
