//! proxyd library.
