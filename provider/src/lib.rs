pub mod config;
pub mod crypto;
pub mod store;
pub mod token;
pub mod abi;
pub mod logging;
