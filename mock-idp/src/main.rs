//! The mock-idp binary.
fn main() {}
