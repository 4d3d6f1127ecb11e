//! The client's side of a session: reading its packets (checking sequence ids and sizes) and
//! writing answers, either payloads dbrouterd builds (OK, ERR, the greeting) or response bytes
//! relayed from a backend exactly as they came.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pool::ResponseSink;
use crate::protocol::packet::{decode_packet, encode_packet};
use crate::protocol::{
    Capabilities, ErrPacket, OkPacket, Packet, PacketCodec, ProtocolError, StatusFlags,
};

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
    stream: TcpStream,
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
            stream,
            rbuf: BytesMut::with_capacity(8 * 1024),
            wbuf: BytesMut::with_capacity(8 * 1024),
            codec: PacketCodec::new(max_packet_size),
            caps: Capabilities::PROTOCOL_41,
            peer,
            relayed: 0,
        }
    }

    /// The next whole packet, with the sequence id the codec expects.
    pub async fn read_packet(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(packet) = self.codec.decode(&mut self.rbuf)? {
                return Ok(packet);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
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
        self.stream.write_all(&self.wbuf).await
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
        self.stream.write_all(bytes).await
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
                    if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}
