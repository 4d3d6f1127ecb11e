//! Capability flags exchanged in the handshake, and MariaDB's extended capabilities.
//!
//! The server offers its capabilities in HandshakeV10, the client answers with the subset it
//! wants; both sides then follow the intersection. MariaDB (10.2+) does not set
//! [`Capabilities::LONG_PASSWORD`] (which it calls `CLIENT_MYSQL`) and instead sends 32 more
//! bits, [`MariaDbCapabilities`], in the last 4 of the handshake's 10 reserved bytes; its
//! clients answer in the last 4 bytes of the response's 23-byte filler.
//!
//! [`flag_set!`] defines these small bit-set newtypes (also used for status flags and the
//! classifier's flags) without pulling in a bitflags dependency.

/// Defines a `Copy` bit-set newtype with named constants, set operations and a `Debug` that
/// prints the names of the bits set (and any unnamed rest in hex).
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($repr:ty) {
            $( $(#[$fmeta:meta])* const $flag:ident = $value:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        $vis struct $name($repr);

        #[allow(dead_code)]
        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self($value); )*

            const NAMED: &'static [(&'static str, $repr)] = &[$((stringify!($flag), $value)),*];

            pub const fn empty() -> Self {
                Self(0)
            }

            /// Keeps every bit, named or not, so unknown bits survive a round trip.
            pub const fn from_bits(bits: $repr) -> Self {
                Self(bits)
            }

            pub const fn bits(self) -> $repr {
                self.0
            }

            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            pub const fn intersection(self, other: Self) -> Self {
                Self(self.0 & other.0)
            }

            pub const fn difference(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }

            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }

            pub fn set(&mut self, other: Self, on: bool) {
                if on {
                    self.insert(other)
                } else {
                    self.remove(other)
                }
            }

            /// Names of the named bits that are set, in declaration order.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::NAMED
                    .iter()
                    .filter(move |(_, bit)| *bit != 0 && self.0 & *bit == *bit)
                    .map(|(name, _)| *name)
            }
        }

        impl ::std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }

        impl ::std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.insert(rhs)
            }
        }

        impl ::std::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                self.intersection(rhs)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                let mut rest = self.0;
                let mut first = true;
                for name in self.names() {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
                for (_, bit) in Self::NAMED {
                    rest &= !*bit;
                }
                if rest != 0 {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{rest:#x}")?;
                }
                f.write_str(")")
            }
        }
    };
}
pub(crate) use flag_set;

flag_set! {
    /// `CLIENT_*` capability flags (the 32 bits of HandshakeV10 and HandshakeResponse41).
    pub struct Capabilities(u32) {
        /// `CLIENT_LONG_PASSWORD`; MariaDB calls it `CLIENT_MYSQL` and clears it to say "I am
        /// MariaDB and send extended capabilities".
        const LONG_PASSWORD = 1;
        const FOUND_ROWS = 1 << 1;
        const LONG_FLAG = 1 << 2;
        const CONNECT_WITH_DB = 1 << 3;
        const NO_SCHEMA = 1 << 4;
        const COMPRESS = 1 << 5;
        const ODBC = 1 << 6;
        const LOCAL_FILES = 1 << 7;
        const IGNORE_SPACE = 1 << 8;
        const PROTOCOL_41 = 1 << 9;
        const INTERACTIVE = 1 << 10;
        const SSL = 1 << 11;
        const IGNORE_SIGPIPE = 1 << 12;
        const TRANSACTIONS = 1 << 13;
        const RESERVED = 1 << 14;
        /// 4.1 authentication (a 20-byte scramble); always set by anything current.
        const SECURE_CONNECTION = 1 << 15;
        const MULTI_STATEMENTS = 1 << 16;
        const MULTI_RESULTS = 1 << 17;
        const PS_MULTI_RESULTS = 1 << 18;
        const PLUGIN_AUTH = 1 << 19;
        const CONNECT_ATTRS = 1 << 20;
        const PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21;
        const CAN_HANDLE_EXPIRED_PASSWORDS = 1 << 22;
        const SESSION_TRACK = 1 << 23;
        const DEPRECATE_EOF = 1 << 24;
        const OPTIONAL_RESULTSET_METADATA = 1 << 25;
        const ZSTD_COMPRESSION_ALGORITHM = 1 << 26;
        /// MySQL 8.0.23+: COM_QUERY and COM_STMT_EXECUTE carry query attributes.
        const QUERY_ATTRIBUTES = 1 << 27;
        const MULTI_FACTOR_AUTHENTICATION = 1 << 28;
        const CAPABILITY_EXTENSION = 1 << 29;
        const SSL_VERIFY_SERVER_CERT = 1 << 30;
        const REMEMBER_OPTIONS = 1 << 31;
    }
}

flag_set! {
    /// MariaDB's extended capabilities (bits 32..63 of its capability word).
    pub struct MariaDbCapabilities(u32) {
        const PROGRESS = 1;
        const COM_MULTI = 1 << 1;
        const STMT_BULK_OPERATIONS = 1 << 2;
        const EXTENDED_METADATA = 1 << 3;
        const CACHE_METADATA = 1 << 4;
        const BULK_UNIT_RESULTS = 1 << 5;
    }
}

impl Capabilities {
    /// Whether a peer announcing these capabilities is MariaDB sending extended capabilities
    /// (it clears `CLIENT_MYSQL`, our [`Capabilities::LONG_PASSWORD`]).
    pub const fn has_mariadb_extensions(self) -> bool {
        !self.contains(Self::LONG_PASSWORD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};

    #[test]
    fn bit_values_match_the_reference_codec() {
        let pairs = [
            (
                Capabilities::PROTOCOL_41,
                CapabilityFlags::CLIENT_PROTOCOL_41,
            ),
            (
                Capabilities::PLUGIN_AUTH,
                CapabilityFlags::CLIENT_PLUGIN_AUTH,
            ),
            (
                Capabilities::SECURE_CONNECTION,
                CapabilityFlags::CLIENT_SECURE_CONNECTION,
            ),
            (
                Capabilities::CONNECT_WITH_DB,
                CapabilityFlags::CLIENT_CONNECT_WITH_DB,
            ),
            (
                Capabilities::DEPRECATE_EOF,
                CapabilityFlags::CLIENT_DEPRECATE_EOF,
            ),
            (
                Capabilities::MULTI_STATEMENTS,
                CapabilityFlags::CLIENT_MULTI_STATEMENTS,
            ),
            (
                Capabilities::MULTI_RESULTS,
                CapabilityFlags::CLIENT_MULTI_RESULTS,
            ),
            (
                Capabilities::PS_MULTI_RESULTS,
                CapabilityFlags::CLIENT_PS_MULTI_RESULTS,
            ),
            (
                Capabilities::SESSION_TRACK,
                CapabilityFlags::CLIENT_SESSION_TRACK,
            ),
            (
                Capabilities::CONNECT_ATTRS,
                CapabilityFlags::CLIENT_CONNECT_ATTRS,
            ),
            (Capabilities::SSL, CapabilityFlags::CLIENT_SSL),
            (
                Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA,
                CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
            ),
            (
                Capabilities::QUERY_ATTRIBUTES,
                CapabilityFlags::CLIENT_QUERY_ATTRIBUTES,
            ),
            (
                Capabilities::REMEMBER_OPTIONS,
                CapabilityFlags::CLIENT_REMEMBER_OPTIONS,
            ),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours.bits(), theirs.bits(), "{ours:?}");
        }
        assert_eq!(
            MariaDbCapabilities::STMT_BULK_OPERATIONS.bits(),
            MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS.bits()
        );
        assert_eq!(
            MariaDbCapabilities::PROGRESS.bits(),
            MariadbCapabilities::MARIADB_CLIENT_PROGRESS.bits()
        );
    }

    #[test]
    fn debug_lists_names_and_unknown_bits() {
        let caps = Capabilities::PROTOCOL_41 | Capabilities::SSL;
        assert_eq!(format!("{caps:?}"), "Capabilities(PROTOCOL_41 | SSL)");
        let m = MariaDbCapabilities::from_bits(1 | 1 << 20);
        assert_eq!(format!("{m:?}"), "MariaDbCapabilities(PROGRESS | 0x100000)");
        assert!(caps.contains(Capabilities::SSL));
        assert!(!caps.contains(Capabilities::SSL | Capabilities::COMPRESS));
        assert!(caps.has_mariadb_extensions());
    }
}
