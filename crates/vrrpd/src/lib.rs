//! vrrpd library.
