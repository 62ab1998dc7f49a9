//! End-to-end tests of the `kluis` binary.

mod crypt;
mod util;
