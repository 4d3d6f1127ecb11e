//! Property tests for every decoder that faces the network: arbitrary bytes must give a value
//! or an error, never a panic, and what we encode must decode to the same value.

use bytes::BytesMut;
use proptest::prelude::*;

use super::change_user::ChangeUser;
use super::command::{init_db_schema, SetOption};
use super::ok::ResponseStart;
use super::packet::{decode_packet, encode_packet, MAX_CHUNK_LEN};
use super::prepared::{rewrite_stmt_id, statement_id, StmtExecuteHeader, StmtPrepareOk};
use super::query::ComQuery;
use super::session_track::{SessionChanges, TransactionState};
use super::wire::Reader;
use super::*;

fn any_caps() -> impl Strategy<Value = Capabilities> {
    any::<u32>().prop_map(Capabilities::from_bits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_decoder_panics_on_arbitrary_payloads(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        caps in any_caps(),
    ) {
        let _ = HandshakeV10::parse(&payload);
        let _ = ClientHello::parse(&payload);
        let _ = HandshakeResponse41::parse(&payload);
        let _ = ChangeUser::parse(&payload, caps);
        let _ = Command::parse(&payload);
        let _ = init_db_schema(&payload);
        let _ = SetOption::parse(&payload);
        let _ = ComQuery::parse(&payload, caps);
        let _ = StmtPrepareOk::parse(&payload);
        let _ = StmtExecuteHeader::parse(&payload);
        let _ = statement_id(&payload);
        let _ = rewrite_stmt_id(&mut payload.clone(), 1);
        let _ = ErrPacket::parse(&payload);
        let _ = EofPacket::parse(&payload);
        let _ = ResponseStart::parse(&payload);
        let _ = TransactionState::parse(&payload);
        if let Ok(ok) = OkPacket::parse(&payload, caps) {
            for change in ok.session_changes() {
                let _ = change;
            }
        }
        for change in SessionChanges::new(&payload) {
            let _ = change;
        }
        let mut r = Reader::new(&payload);
        while r.lenenc_bytes("fuzz").is_ok() {}
    }

    #[test]
    fn decoders_survive_a_valid_prefix_followed_by_garbage(
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 0usize..200,
    ) {
        // Start from real packets so the fuzzing reaches the later fields.
        let caps = Capabilities::PROTOCOL_41 | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH | Capabilities::CONNECT_WITH_DB
            | Capabilities::CONNECT_ATTRS | Capabilities::SESSION_TRACK
            | Capabilities::QUERY_ATTRIBUTES | Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA;
        let response = HandshakeResponse41 {
            capabilities: caps,
            username: b"app".to_vec(),
            auth_response: vec![1; 20],
            database: Some(b"shop".to_vec()),
            auth_plugin_name: Some("mysql_native_password".into()),
            connect_attrs: vec![(b"a".to_vec(), b"b".to_vec())],
            ..Default::default()
        };
        let mut bytes = Vec::new();
        response.encode(&mut bytes);
        bytes.truncate(cut.min(bytes.len()));
        bytes.extend_from_slice(&tail);
        let _ = HandshakeResponse41::parse(&bytes);
        let _ = ClientHello::parse(&bytes);

        let mut ok = vec![0x00, 1, 0, 0x02, 0x40, 0, 0];
        ok.extend_from_slice(&tail);
        if let Ok(ok) = OkPacket::parse(&ok, caps) {
            for change in ok.session_changes() {
                let _ = change;
            }
        }
        let mut query = vec![0x03, 2, 1, 0, 1];
        query.extend_from_slice(&tail);
        let _ = ComQuery::parse(&query, caps);
    }

    #[test]
    fn framing_never_panics_and_only_errors_or_waits(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        seq in any::<u8>(),
        limit in 0usize..100,
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        let before = buf.len();
        match decode_packet(&mut buf, seq, limit) {
            Ok(Some((packet, _))) => prop_assert!(packet.payload.len() <= limit),
            Ok(None) => prop_assert_eq!(buf.len(), before),
            Err(_) => {}
        }
    }

    #[test]
    fn framing_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
        seq in any::<u8>(),
    ) {
        let mut buf = BytesMut::new();
        let next = encode_packet(&payload, seq, &mut buf);
        let (packet, after) = decode_packet(&mut buf, seq, MAX_CHUNK_LEN * 2)
            .unwrap()
            .unwrap();
        prop_assert_eq!(&packet.payload[..], &payload[..]);
        prop_assert_eq!(after, next);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn handshake_round_trips(
        version in "[ -~]{0,40}",
        connection_id in any::<u32>(),
        data in proptest::collection::vec(1u8..=255, 20),
        charset in any::<u8>(),
        status in any::<u16>(),
        plugin in "[a-z_]{1,30}",
        ext in any::<u32>(),
    ) {
        let caps = Capabilities::PROTOCOL_41 | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH;
        let hs = HandshakeV10 {
            server_version: version,
            connection_id,
            auth_plugin_data: data,
            capabilities: caps,
            mariadb_capabilities: MariaDbCapabilities::from_bits(ext),
            charset,
            status: StatusFlags::from_bits(status),
            auth_plugin_name: Some(plugin),
        };
        let mut buf = Vec::new();
        hs.encode(&mut buf);
        prop_assert_eq!(HandshakeV10::parse(&buf).unwrap(), hs);
    }
}
