//! The 8-byte fixed header shared by VRRPv2 and VRRPv3, and the interval units each carries.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v3: |(rsvd) |     Max Adver Int     |          Checksum             |
//! v2: |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The header is read and written by hand over byte slices: it is eight bytes, and doing it
//! here keeps every bounds check visible (the IP layer uses `pnet_packet`).

use std::time::Duration;

use super::EncodeError;

/// Length of the fixed header.
pub(crate) const HEADER_LEN: usize = 8;
/// Byte offset of the checksum field; word 3 when the message is read as 16-bit words.
pub(crate) const CHECKSUM_WORD: usize = 3;
/// The only VRRP packet type: ADVERTISEMENT.
pub(crate) const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest interval VRRPv3's 12-bit centisecond field can carry.
const MAX_CENTIS: u16 = 0x0fff;

/// The fixed header, decoded field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    pub version: u8,
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    pub count: u8,
    /// Bytes 4..6: v3 reserved bits plus interval, v2 auth type plus interval.
    pub word2: u16,
}

impl FixedHeader {
    /// Reads the header from the start of `message`; `None` if it is shorter than 8 bytes.
    pub fn parse(message: &[u8]) -> Option<Self> {
        let bytes: &[u8; HEADER_LEN] = message.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FixedHeader {
            version: bytes[0] >> 4,
            kind: bytes[0] & 0x0f,
            vrid: bytes[1],
            priority: bytes[2],
            count: bytes[3],
            word2: u16::from_be_bytes([bytes[4], bytes[5]]),
        })
    }

    /// v3: the 12-bit Max Adver Int, in centiseconds (the reserved bits are ignored, as
    /// RFC 5798 §5.2.6 asks).
    pub fn v3_centis(&self) -> u16 {
        self.word2 & MAX_CENTIS
    }

    /// v2: the Auth Type byte.
    pub fn v2_auth_type(&self) -> u8 {
        (self.word2 >> 8) as u8
    }

    /// v2: the Adver Int byte, in seconds.
    pub fn v2_secs(&self) -> u8 {
        (self.word2 & 0xff) as u8
    }

    /// Appends the header to `out` with a zero checksum, to be filled in once the whole
    /// message is known.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push((self.version << 4) | (self.kind & 0x0f));
        out.push(self.vrid);
        out.push(self.priority);
        out.push(self.count);
        out.extend_from_slice(&self.word2.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
}

/// Stores `checksum` into an encoded message.
pub(crate) fn set_checksum(message: &mut [u8], checksum: u16) {
    let at = CHECKSUM_WORD * 2;
    if let Some(field) = message.get_mut(at..at + 2) {
        field.copy_from_slice(&checksum.to_be_bytes());
    }
}

/// The address count as the one-byte field, or an error past 255.
pub(crate) fn address_count(count: usize) -> Result<u8, EncodeError> {
    u8::try_from(count).map_err(|_| EncodeError::TooManyAddresses { count })
}

/// Converts an interval to VRRPv3 centiseconds: a multiple of 10ms in 10ms..=40950ms.
pub fn centis_from_interval(interval: Duration) -> Result<u16, EncodeError> {
    let centis = interval.as_millis() / 10;
    match u16::try_from(centis) {
        Ok(centis)
            if (1..=MAX_CENTIS).contains(&centis) && interval_from_centis(centis) == interval =>
        {
            Ok(centis)
        }
        _ => Err(EncodeError::IntervalNotCentiseconds { interval }),
    }
}

/// Converts an interval to VRRPv2 seconds: a whole number in 1s..=255s.
pub fn secs_from_interval(interval: Duration) -> Result<u8, EncodeError> {
    let err = EncodeError::IntervalNotSeconds { interval };
    if interval.subsec_nanos() != 0 {
        return Err(err);
    }
    match u8::try_from(interval.as_secs()) {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(err),
    }
}

/// The interval a VRRPv3 centisecond field stands for.
pub(crate) fn interval_from_centis(centis: u16) -> Duration {
    Duration::from_millis(u64::from(centis) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let header = FixedHeader {
            version: 3,
            kind: 1,
            vrid: 51,
            priority: 150,
            count: 2,
            word2: 0x000a,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(out, [0x31, 51, 150, 2, 0x00, 0x0a, 0, 0]);
        assert_eq!(FixedHeader::parse(&out), Some(header));
        assert_eq!(FixedHeader::parse(&out[..7]), None);
    }

    #[test]
    fn v3_interval_ignores_reserved_bits() {
        let header = FixedHeader::parse(&[0x31, 1, 100, 0, 0xf0, 0x64, 0, 0]);
        assert_eq!(header.map(|h| h.v3_centis()), Some(100));
    }

    #[test]
    fn centiseconds_accept_the_documented_range_only() {
        assert_eq!(centis_from_interval(Duration::from_millis(10)), Ok(1));
        assert_eq!(centis_from_interval(Duration::from_millis(100)), Ok(10));
        assert_eq!(centis_from_interval(Duration::from_millis(40950)), Ok(4095));
        for bad in [0, 5, 15, 40960, 1_000_000] {
            assert!(
                centis_from_interval(Duration::from_millis(bad)).is_err(),
                "{bad}ms"
            );
        }
        assert!(centis_from_interval(Duration::from_micros(10_001)).is_err());
    }

    #[test]
    fn seconds_accept_whole_seconds_up_to_255() {
        assert_eq!(secs_from_interval(Duration::from_secs(1)), Ok(1));
        assert_eq!(secs_from_interval(Duration::from_secs(255)), Ok(255));
        assert!(secs_from_interval(Duration::ZERO).is_err());
        assert!(secs_from_interval(Duration::from_secs(256)).is_err());
        assert!(secs_from_interval(Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn too_many_addresses_is_an_error() {
        assert_eq!(address_count(255), Ok(255));
        assert_eq!(
            address_count(256),
            Err(EncodeError::TooManyAddresses { count: 256 })
        );
    }
}
