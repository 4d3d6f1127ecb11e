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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;

    use crate::protocol::auth::scramble_native;
    use crate::protocol::packet::encode_packet;
    use crate::protocol::SslRequest;

    const CAPS: Capabilities = Capabilities::PROTOCOL_41
        .union(Capabilities::SECURE_CONNECTION)
        .union(Capabilities::PLUGIN_AUTH);

    fn testdata(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/tls/testdata")
            .join(name)
    }

    fn server_tls(require: bool) -> ServerTls {
        ServerTls {
            acceptor: crate::tls::acceptor(&testdata("server.crt"), &testdata("server.key"))
                .expect("test certificate"),
            require,
        }
    }

    fn framed(payload: &[u8], seq: u8) -> Vec<u8> {
        let mut out = Vec::new();
        encode_packet(payload, seq, &mut out);
        out
    }

    fn read_packet(r: &mut impl Read) -> (u8, Vec<u8>) {
        let mut header = [0u8; 4];
        r.read_exact(&mut header).expect("packet header");
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut payload = vec![0; len];
        r.read_exact(&mut payload).expect("packet payload");
        (header[3], payload)
    }

    fn response(greeting: &HandshakeV10, caps: Capabilities) -> Vec<u8> {
        let mut payload = Vec::new();
        HandshakeResponse41 {
            capabilities: caps,
            max_packet_size: 1 << 24,
            charset: DEFAULT_CHARSET,
            username: b"app".to_vec(),
            auth_response: scramble_native(&greeting.auth_plugin_data, b"apppw")
                .map(|r| r.to_vec())
                .unwrap_or_default(),
            auth_plugin_name: Some(NATIVE_PASSWORD.into()),
            ..Default::default()
        }
        .encode(&mut payload);
        payload
    }

    /// Serves one greeting on a loopback socket; the client runs in `client` (blocking).
    async fn greet_one<T: Send + 'static>(
        tls: ServerTls,
        client: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
    ) -> (Option<HandshakeResponse41>, bool, T) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::task::spawn_blocking(move || {
            let sock = std::net::TcpStream::connect(addr).expect("connect");
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            client(sock)
        });
        let (stream, peer) = listener.accept().await.expect("accept");
        let mut conn = ClientConn::new(stream, peer, 1 << 24);
        let scramble = Scramble::generate(&mut rand::thread_rng());
        let response = greet(&mut conn, 7, "8.0.36-test", &scramble, Some(&tls))
            .await
            .expect("greet");
        if response.is_some() {
            conn.send_ok(StatusFlags::AUTOCOMMIT).await.expect("OK");
        }
        let tls_used = conn.is_tls();
        drop(conn);
        (response, tls_used, client.await.expect("client"))
    }

    #[tokio::test]
    async fn the_handshake_continues_inside_tls_even_when_tls_bytes_came_with_the_ssl_request() {
        let (response, tls_used, ok) = greet_one(server_tls(true), |mut sock| {
            let (_, payload) = read_packet(&mut sock);
            let greeting = HandshakeV10::parse(&payload).expect("greeting");
            assert!(greeting.capabilities.contains(Capabilities::SSL));
            let mut ssl = Vec::new();
            SslRequest {
                capabilities: CAPS | Capabilities::SSL,
                max_packet_size: 1 << 24,
                charset: DEFAULT_CHARSET,
                mariadb_capabilities: MariaDbCapabilities::empty(),
            }
            .encode(&mut ssl);

            let mut roots = rustls::RootCertStore::empty();
            let ca = std::fs::read(testdata("ca.crt")).expect("ca");
            for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
                roots.add(cert.expect("ca cert")).expect("root");
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let mut tls = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
            // The SSLRequest and the ClientHello in one segment, as a fast client sends them.
            let mut first = framed(&ssl, 1);
            tls.write_tls(&mut first).expect("ClientHello");
            sock.write_all(&first).expect("write");
            let mut stream = rustls::StreamOwned::new(tls, sock);
            stream
                .write_all(&framed(&response(&greeting, CAPS | Capabilities::SSL), 2))
                .expect("response inside TLS");
            stream.flush().expect("flush");
            read_packet(&mut stream)
        })
        .await;
        let response = response.expect("let in");
        assert_eq!(response.username, b"app");
        assert!(tls_used);
        assert_eq!(ok, (3, vec![0, 0, 0, 2, 0, 0, 0]), "the OK, inside TLS");
    }

    /// A client that answers the greeting without asking for TLS; returns the server's reply.
    fn plain_client(mut sock: std::net::TcpStream) -> (u8, Vec<u8>) {
        let (_, payload) = read_packet(&mut sock);
        let greeting = HandshakeV10::parse(&payload).expect("greeting");
        sock.write_all(&framed(&response(&greeting, CAPS), 1))
            .expect("write");
        read_packet(&mut sock)
    }

    #[tokio::test]
    async fn a_plain_client_on_a_listener_requiring_tls_gets_3159() {
        let (response, tls_used, (seq, err)) = greet_one(server_tls(true), plain_client).await;
        assert!(response.is_none());
        assert!(!tls_used);
        assert_eq!(seq, 2);
        let err = ErrPacket::parse(&err).expect("an ERR packet");
        assert_eq!(err.code, 3159, "{err}");
    }

    #[tokio::test]
    async fn tls_is_optional_unless_required() {
        let (response, tls_used, (_, ok)) = greet_one(server_tls(false), plain_client).await;
        assert!(response.is_some());
        assert!(!tls_used);
        assert_eq!(ok.first(), Some(&0));
    }
}
