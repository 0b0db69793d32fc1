pub mod abi;
pub mod config;
pub mod crypto;
pub mod logging;
pub mod store;
pub mod token;
