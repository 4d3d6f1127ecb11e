//! dbrouterd library.
