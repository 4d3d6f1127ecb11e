//! The client's side of a session: reading its packets (checking sequence ids and sizes) and
//! writing answers, either payloads dbrouterd builds (OK, ERR, the greeting) or response bytes
//! relayed from a backend exactly as they came. The stream is plain TCP or, after the
//! client's SSLRequest, TLS ([`ClientConn::start_tls`]); the rest of the session does not care
//! which.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::pool::ResponseSink;
use crate::protocol::packet::{decode_packet, encode_packet};
use crate::protocol::{
    Capabilities, ErrPacket, OkPacket, Packet, PacketCodec, ProtocolError, StatusFlags,
};
use crate::tls::{ClientStream, Rewind, HANDSHAKE_TIMEOUT};

/// What a read from the client is given: the buffer's size, and the least room left in it
/// before a read ([`ha_core::io::make_room`]).
const READ_SIZE: usize = 8 * 1024;
const READ_ROOM: usize = 2 * 1024;

/// Why reading from the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client closed the connection")]
    Closed,
    #[error("client connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("client sent a bad packet: {0}")]
    Protocol(#[from] ProtocolError),
}

pub struct ClientConn {
    stream: ClientStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    pub codec: PacketCodec,
    /// Negotiated capabilities (the greeting's offer narrowed by the client's answer).
    pub caps: Capabilities,
    pub peer: SocketAddr,
    /// Response bytes relayed for the current command (an error after some were sent cannot
    /// be reported in-band: the connection must close).
    pub relayed: usize,
}

impl ClientConn {
    pub fn new(stream: TcpStream, peer: SocketAddr, max_packet_size: usize) -> Self {
        let _ = stream.set_nodelay(true);
        ClientConn {
            stream: ClientStream::Plain(stream),
            rbuf: BytesMut::with_capacity(READ_SIZE),
            wbuf: BytesMut::with_capacity(8 * 1024),
            codec: PacketCodec::new(max_packet_size),
            caps: Capabilities::PROTOCOL_41,
            peer,
            relayed: 0,
        }
    }

    /// Whether the client switched to TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Runs the TLS handshake on the client's socket (after its SSLRequest), within
    /// [`HANDSHAKE_TIMEOUT`]. Bytes of the TLS handshake already read are handed to TLS first.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> Result<(), ClientError> {
        let ClientStream::Plain(tcp) = std::mem::replace(&mut self.stream, ClientStream::Detached)
        else {
            return Err(ClientError::Protocol(ProtocolError::Unsupported {
                what: "SSLRequest on a connection already using TLS",
            }));
        };
        let early = self.rbuf.split();
        let accept = acceptor.accept(Rewind::new(early.freeze(), tcp));
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                return Err(ClientError::Io(io::Error::new(
                    e.kind(),
                    format!("TLS handshake: {e}"),
                )))
            }
            Err(_) => {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}"),
                )))
            }
        };
        self.stream = ClientStream::Tls(Box::new(tls));
        Ok(())
    }

    /// Reads what the client sent into the read buffer, with room for it; `Ok(0)` at the end.
    async fn fill(&mut self) -> io::Result<usize> {
        ha_core::io::make_room(&mut self.rbuf, READ_ROOM, READ_SIZE);
        self.stream.read_buf(&mut self.rbuf).await
    }

    /// The next whole packet, with the sequence id the codec expects.
    pub async fn read_packet(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.rbuf)? {
                return Ok(packet);
            }
            if self.fill().await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next command: a packet with sequence id 0.
    pub async fn read_command(&mut self) -> Result<Packet, ClientError> {
        self.codec.reset_sequence();
        self.relayed = 0;
        self.read_packet().await
    }

    /// Frames `payload` with the next sequence id and sends it.
    pub async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.wbuf.clear();
        self.codec.encode(payload, &mut self.wbuf);
        self.stream.write_all(&self.wbuf).await?;
        // TLS buffers records until flushed; on TCP this is free.
        self.stream.flush().await
    }

    pub async fn send_err(&mut self, err: &ErrPacket) -> io::Result<()> {
        let mut payload = Vec::with_capacity(err.message.len() + 9);
        err.encode(self.caps, &mut payload);
        self.send(&payload).await
    }

    pub async fn send_ok(&mut self, status: StatusFlags) -> io::Result<()> {
        let mut payload = Vec::with_capacity(16);
        OkPacket {
            affected_rows: 0,
            last_insert_id: 0,
            status,
            warnings: 0,
            info: &[],
            session_state: &[],
        }
        .encode(self.caps, &mut payload);
        self.send(&payload).await
    }

    /// Sends already framed bytes (packets relayed with the backend's sequence ids).
    pub async fn send_framed(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.relayed += bytes.len();
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }
}

impl ResponseSink for ClientConn {
    async fn forward(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send_framed(bytes).await
    }

    async fn next_infile_packet(&mut self, seq: u8) -> io::Result<Option<Vec<u8>>> {
        let max = self.codec.max_packet_size();
        loop {
            match decode_packet(&mut self.rbuf, seq, max) {
                Ok(Some((packet, _))) => {
                    let mut framed = Vec::with_capacity(packet.payload.len() + 4);
                    encode_packet(&packet.payload, seq, &mut framed);
                    return Ok(Some(framed));
                }
                Ok(None) => {
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}
