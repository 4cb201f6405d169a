//! placeholder
pub struct ClientCheckOptions;
pub fn check_client() {}
