//! key4c: a PKCS#11 provider emulating the Key4C V3 HSM token.
//!
//! Layers, top to bottom: [`abi`] (the C ABI, all `unsafe`), [`token`] (the token as safe
//! Rust), [`store`] (sled records) and [`crypto`] (aws-lc-rs).

// CK_ULONG is 64 bits here and 32 on other targets; the casts between it and the store's u64
// are there on purpose.
#![allow(clippy::unnecessary_cast)]

pub mod abi;
pub mod config;
pub mod crypto;
pub mod eintr;
pub mod logging;
pub mod store;
pub mod token;
