//! The scanner against hand-built responses, fed whole and one byte at a time.

use super::*;
use crate::protocol::packet::encode_packet;

const EOF_CAPS: Capabilities = Capabilities::PROTOCOL_41;
const DEPRECATE: Capabilities = Capabilities::PROTOCOL_41.union(Capabilities::DEPRECATE_EOF);

fn frame(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    for p in payloads {
        seq = encode_packet(p, seq, &mut out);
    }
    out
}

/// Feeds `bytes` in pieces of `step`, as reads would deliver them; returns the consumed total
/// and whether the scanner saw the end exactly at the end of `bytes`.
fn scan_in_steps(scanner: &mut ResponseScanner, bytes: &[u8], step: usize) -> usize {
    let mut pending: Vec<u8> = Vec::new();
    let mut relayed = 0;
    for piece in bytes.chunks(step) {
        pending.extend_from_slice(piece);
        match scanner.scan(&pending).expect("scan") {
            Progress::More { consumed } => {
                relayed += consumed;
                pending.drain(..consumed);
            }
            Progress::Done { consumed } => {
                relayed += consumed;
                return relayed;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("response did not end; relayed {relayed}");
}

const OK_AUTOCOMMIT: &[u8] = b"\x00\x00\x00\x02\x00\x00\x00";
const EOF_AUTOCOMMIT: &[u8] = b"\xfe\x00\x00\x02\x00";

#[test]
fn a_text_result_set_ends_at_its_eof() {
    let bytes = frame(&[
        b"\x01",
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00",
        EOF_AUTOCOMMIT,
        b"\x011",
        b"\x012",
        b"\xfe\x00\x00\x22\x00",
    ]);
    for step in [1, 3, bytes.len()] {
        let mut s = ResponseScanner::new(ResponseKind::Query, EOF_CAPS);
        assert_eq!(scan_in_steps(&mut s, &bytes, step), bytes.len());
        assert_eq!(s.summary().status, Some(StatusFlags::from_bits(0x22)));
    }
}

#[test]
fn deprecate_eof_result_sets_end_at_an_ok_with_fe_header() {
    let bytes = frame(&[
        b"\x01",
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00",
        b"\x011",
        b"\xfe\x00\x00\x03\x00\x00\x00",
    ]);
    let mut s = ResponseScanner::new(ResponseKind::Query, DEPRECATE);
    assert_eq!(scan_in_steps(&mut s, &bytes, 2), bytes.len());
    assert!(s.summary().status.unwrap().contains(StatusFlags::IN_TRANS));
}

#[test]
fn an_opened_cursor_ends_the_response_after_the_column_definitions() {
    let column =
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00";
    let eof_cursor: &[u8] = b"\xfe\x00\x00\x42\x00"; // AUTOCOMMIT | CURSOR_EXISTS
    let bytes = frame(&[b"\x01", column, eof_cursor]);
    for step in [1, bytes.len()] {
        let mut s = ResponseScanner::new(ResponseKind::Cursor, EOF_CAPS);
        assert_eq!(scan_in_steps(&mut s, &bytes, step), bytes.len());
        assert!(s
            .summary()
            .status
            .unwrap()
            .contains(StatusFlags::CURSOR_EXISTS));
    }
    let ok_cursor: &[u8] = b"\xfe\x00\x00\x42\x00\x00\x00";
    let bytes = frame(&[b"\x01", column, ok_cursor]);
    let mut s = ResponseScanner::new(ResponseKind::Cursor, DEPRECATE);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1), bytes.len());
    // No cursor after all (the server sends the rows at once): the rows follow.
    let bytes = frame(&[b"\x01", column, EOF_AUTOCOMMIT, b"\x011", EOF_AUTOCOMMIT]);
    let mut s = ResponseScanner::new(ResponseKind::Cursor, EOF_CAPS);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1), bytes.len());
}

#[test]
fn more_results_continue_to_the_next_result() {
    let first_ok = b"\x00\x00\x00\x0a\x00\x00\x00"; // AUTOCOMMIT | MORE_RESULTS_EXISTS
    let bytes = frame(&[first_ok, OK_AUTOCOMMIT]);
    let mut s = ResponseScanner::new(ResponseKind::Query, DEPRECATE);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1), bytes.len());
    assert_eq!(s.summary().result_sets, 2);
}

#[test]
fn an_error_ends_the_response_and_is_reported() {
    let bytes = frame(&[b"\xff\x28\x04#42000You have an error"]);
    let mut s = ResponseScanner::new(ResponseKind::Query, DEPRECATE);
    assert_eq!(scan_in_steps(&mut s, &bytes, 5), bytes.len());
    assert_eq!(s.summary().error.as_ref().map(|e| e.code), Some(1064));
}

#[test]
fn rows_over_16_mib_stream_through() {
    let mut big = vec![0xFCu8];
    big.extend_from_slice(&[0; 2]);
    big.resize(MAX_CHUNK_LEN + 10, b'x');
    let bytes = frame(&[
        b"\x01",
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00",
        &big,
        b"\xfe\x00\x00\x02\x00\x00\x00",
    ]);
    let mut s = ResponseScanner::new(ResponseKind::Query, DEPRECATE);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1 << 20), bytes.len());
}

#[test]
fn local_infile_requests_hand_over_to_the_client() {
    let bytes = frame(&[b"\xfb/tmp/data.csv"]);
    let mut s = ResponseScanner::new(ResponseKind::Query, DEPRECATE);
    assert_eq!(
        s.scan(&bytes).unwrap(),
        Progress::LocalInfile {
            consumed: bytes.len(),
            next_seq: 2
        }
    );
    let ok = frame(&[OK_AUTOCOMMIT]);
    assert!(matches!(s.scan(&ok).unwrap(), Progress::Done { .. }));
}

#[test]
fn session_tracking_reports_schema_and_last_gtid() {
    // OK with SESSION_STATE_CHANGED: schema "appdb" and last_gtid "0-1-5".
    let mut state = Vec::new();
    state.extend_from_slice(b"\x01\x06\x05appdb");
    state.extend_from_slice(b"\x00\x10\x09last_gtid\x050-1-5");
    let mut ok = b"\x00\x00\x00\x02\x40\x00\x00\x00".to_vec();
    ok.push(state.len() as u8);
    ok.extend_from_slice(&state);
    let bytes = frame(&[&ok]);
    let caps = DEPRECATE.union(Capabilities::SESSION_TRACK);
    let mut s = ResponseScanner::new(ResponseKind::Query, caps);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1), bytes.len());
    assert_eq!(s.summary().schema.as_deref(), Some(&b"appdb"[..]));
    assert_eq!(s.summary().gtid.as_deref(), Some("0-1-5"));
}

#[test]
fn field_list_ends_at_eof() {
    let bytes = frame(&[b"\x03def\x00\x00\x00\x01a\x00\x0c", EOF_AUTOCOMMIT]);
    let mut s = ResponseScanner::new(ResponseKind::FieldList, EOF_CAPS);
    assert_eq!(scan_in_steps(&mut s, &bytes, 1), bytes.len());
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        for kind in [ResponseKind::Query, ResponseKind::FieldList, ResponseKind::Fetch, ResponseKind::Single] {
            let mut s = ResponseScanner::new(kind, DEPRECATE);
            let _ = s.scan(&bytes);
        }
    }
}
