//! The connection phase with a client: dbrouterd's greeting (HandshakeV10), capability
//! negotiation, and the client's answer, up to a verified user (see [`super::auth`]).
//!
//! Offered: PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH (+ LENENC client data), CONNECT_WITH_DB,
//! CONNECT_ATTRS, DEPRECATE_EOF, MULTI_STATEMENTS, MULTI_RESULTS, PS_MULTI_RESULTS,
//! SESSION_TRACK, LOCAL_FILES, FOUND_ROWS and the other flags that do not change framing.
//! SSL only on a listener with `tls`: a client's SSLRequest switches the socket to TLS and the
//! real response follows inside it. On a listener with `tls.require`, a client that answers
//! without switching gets ERROR 3159 (ER_SECURE_TRANSPORT_REQUIRED, MySQL's answer under
//! `require_secure_transport`). Without `tls`, an SSLRequest gets 1043 (clients that insist on
//! TLS fail rather than silently downgrade).
//! Not offered: COMPRESS, QUERY_ATTRIBUTES and MariaDB's extended capabilities (CLIENT_MYSQL
//! stays set), so backend connections never need them either.

use crate::protocol::auth::{Scramble, NATIVE_PASSWORD};
use crate::protocol::{
    Capabilities, ClientHello, ErrPacket, HandshakeResponse41, HandshakeV10, MariaDbCapabilities,
    ProtocolError, StatusFlags,
};
use crate::tls::ServerTls;

use super::client::{ClientConn, ClientError};

/// What dbrouterd offers every client.
pub const OFFERED: Capabilities = Capabilities::LONG_PASSWORD
    .union(Capabilities::FOUND_ROWS)
    .union(Capabilities::LONG_FLAG)
    .union(Capabilities::CONNECT_WITH_DB)
    .union(Capabilities::LOCAL_FILES)
    .union(Capabilities::IGNORE_SPACE)
    .union(Capabilities::PROTOCOL_41)
    .union(Capabilities::INTERACTIVE)
    .union(Capabilities::IGNORE_SIGPIPE)
    .union(Capabilities::TRANSACTIONS)
    .union(Capabilities::SECURE_CONNECTION)
    .union(Capabilities::MULTI_STATEMENTS)
    .union(Capabilities::MULTI_RESULTS)
    .union(Capabilities::PS_MULTI_RESULTS)
    .union(Capabilities::PLUGIN_AUTH)
    .union(Capabilities::CONNECT_ATTRS)
    .union(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA)
    .union(Capabilities::SESSION_TRACK)
    .union(Capabilities::DEPRECATE_EOF);

/// utf8mb4_general_ci, what the test servers and most current ones default to.
pub const DEFAULT_CHARSET: u8 = 45;

/// Sends the greeting and reads the client's response, switching to TLS first when the
/// client asks and `tls` is configured. Errors that the protocol lets us report (a malformed or
/// out-of-order response) are answered with an ERR packet first. `Ok(None)`: the client was
/// refused (it did not switch to TLS on a listener that requires it) and told so.
pub async fn greet(
    client: &mut ClientConn,
    connection_id: u32,
    server_version: &str,
    scramble: &Scramble,
    tls: Option<&ServerTls>,
) -> Result<Option<HandshakeResponse41>, ClientError> {
    let offered = match tls {
        Some(_) => OFFERED.union(Capabilities::SSL),
        None => OFFERED,
    };
    let greeting = HandshakeV10 {
        server_version: server_version.to_string(),
        connection_id,
        auth_plugin_data: scramble.as_bytes().to_vec(),
        capabilities: offered,
        mariadb_capabilities: MariaDbCapabilities::empty(),
        charset: DEFAULT_CHARSET,
        status: StatusFlags::AUTOCOMMIT,
        auth_plugin_name: Some(NATIVE_PASSWORD.to_string()),
    };
    let mut payload = Vec::with_capacity(128);
    greeting.encode(&mut payload);
    client.codec.reset_sequence();
    client.send(&payload).await?;

    let mut hello = read_hello(client).await?;
    if let ClientHello::SslRequest(_) = hello {
        let Some(tls) = tls else {
            let _ = client.send_err(&ErrPacket::bad_handshake()).await;
            return Err(ClientError::Protocol(ProtocolError::Unsupported {
                what: "TLS (SSLRequest) on a listener without TLS",
            }));
        };
        // Nothing can be said to a client whose TLS handshake failed: its bytes are not ours.
        client.start_tls(&tls.acceptor).await?;
        hello = read_hello(client).await?;
    }
    let response = match hello {
        ClientHello::Response(response) => response,
        ClientHello::SslRequest(_) => {
            let _ = client.send_err(&ErrPacket::bad_handshake()).await;
            return Err(ClientError::Protocol(ProtocolError::Unsupported {
                what: "a second SSLRequest inside TLS",
            }));
        }
    };
    client.caps = response.capabilities.intersection(offered);
    if tls.is_some_and(|t| t.require) && !client.is_tls() {
        client
            .send_err(&ErrPacket::secure_transport_required())
            .await?;
        return Ok(None);
    }
    Ok(Some(response))
}

/// Reads the client's answer to the greeting (or, inside TLS, the response after its
/// SSLRequest); a bad one is answered with an ERR.
async fn read_hello(client: &mut ClientConn) -> Result<ClientHello, ClientError> {
    let packet = match client.read_packet().await {
        Ok(p) => p,
        Err(ClientError::Protocol(e)) => {
            let _ = client.send_err(&ErrPacket::from_protocol_error(&e)).await;
            return Err(ClientError::Protocol(e));
        }
        Err(e) => return Err(e),
    };
    match ClientHello::parse(&packet.payload) {
        Ok(hello) => Ok(hello),
        Err(e) => {
            let _ = client.send_err(&ErrPacket::bad_handshake()).await;
            Err(ClientError::Protocol(e))
        }
    }
}
