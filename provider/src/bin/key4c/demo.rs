//! `key4c demo`: the token's life in a throw-away store — PIN policy, initialisation, login,
//! lockout after 5 wrong PINs, and the SO's unlock of the User PIN — through the token API.

use std::path::PathBuf;

use key4c_pkcs11::config::Config;
use key4c_pkcs11::token::error::ckr_name;
use key4c_pkcs11::token::pin_policy;
use key4c_pkcs11::token::{Error, Token};
use pkcs11_sys::*;

use crate::error::{describe, CliError, Result};

const SO_PIN: &[u8] = b"So-Pin.2024x";
const USER_PIN: &[u8] = b"Us3r#Pin.9k";

/// Runs the demo in `store`, or in a temporary store removed afterwards.
pub fn run(store: Option<PathBuf>) -> Result<()> {
    demo(store).map_err(CliError::from)
}

fn demo(store: Option<PathBuf>) -> std::result::Result<(), String> {
    let temp;
    let dir = match store {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            temp.path().join("store")
        }
    };
    let config = Config {
        store: Some(dir.clone()),
        ..Config::default()
    };
    let retry_limit = config.pin_retry_limit;
    let token = Token::open(config).map_err(|e| describe(&e))?;
    if token.service_info().token_created.is_some() {
        return Err(format!(
            "the store {} holds a token already: the demo needs a new store (its wrong PINs would count against that token)",
            dir.display()
        ));
    }
    let slot = token.slot_id();
    println!("Store: {}", dir.display());
    show_token(&token)?;

    println!("\n1. The PIN policy is checked whenever a PIN is set:");
    for pin in [
        "Short1!",
        "Key4C_Pin.9x",
        "key4c-pin.9x",
        "Pw1234-xyZ",
        "Xaaaa-19Z",
    ] {
        let rv = token
            .init_token(slot, pin.as_bytes(), &label("demo"))
            .err()
            .map(|e| e.ckr())
            .unwrap_or(CKR_OK);
        let why = pin_policy::check(pin.as_bytes())
            .err()
            .map(|v| v.explain())
            .unwrap_or("accepted");
        println!("   C_InitToken(SO PIN {pin:?}) -> {}: {why}", ckr_name(rv));
    }

    println!("\n2. Initialise the token (SO PIN) and set the User PIN (as the SO):");
    step(
        "C_InitToken",
        token.init_token(slot, SO_PIN, &label("key4c demo")),
    )?;
    let h = token
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .map_err(|e| e.to_string())?;
    step("C_Login(SO)", token.login(h, CKU_SO, SO_PIN))?;
    step("C_InitPIN", token.init_pin(h, USER_PIN))?;
    step("C_Logout", token.logout(h))?;
    step("C_Login(User)", token.login(h, CKU_USER, USER_PIN))?;
    step("C_Logout", token.logout(h))?;

    println!("\n3. Wrong User PINs lock the User PIN after {retry_limit} attempts:");
    for n in 1..=retry_limit {
        let rv = token
            .login(h, CKU_USER, b"Wr0ng-Pin.x")
            .err()
            .map(|e| e.ckr())
            .unwrap_or(CKR_OK);
        println!(
            "   wrong PIN #{n}: {:<20} flags: {}",
            ckr_name(rv),
            pin_flags(&token)?
        );
    }
    let rv = token
        .login(h, CKU_USER, USER_PIN)
        .err()
        .map(|e| e.ckr())
        .unwrap_or(CKR_OK);
    println!("   right PIN while locked: {}", ckr_name(rv));

    println!("\n4. The SO unlocks it by setting a new User PIN:");
    step("C_Login(SO)", token.login(h, CKU_SO, SO_PIN))?;
    step("C_InitPIN", token.init_pin(h, b"New-Us3r.Pin"))?;
    step("C_Logout", token.logout(h))?;
    step(
        "C_Login(User, new PIN)",
        token.login(h, CKU_USER, b"New-Us3r.Pin"),
    )?;
    println!("   flags: {}", pin_flags(&token)?);
    step("C_CloseSession", token.close_session(h))?;
    println!();
    show_token(&token)
}

fn label(s: &str) -> [u8; 32] {
    key4c_pkcs11::token::padded(s)
}

fn step(what: &str, result: std::result::Result<(), Error>) -> std::result::Result<(), String> {
    match result {
        Ok(()) => {
            println!("   {what}: CKR_OK");
            Ok(())
        }
        Err(e) => Err(format!("{what} failed: {} ({e})", ckr_name(e.ckr()))),
    }
}

fn show_token(token: &Token) -> std::result::Result<(), String> {
    let info = token
        .token_info(token.slot_id())
        .map_err(|e| e.to_string())?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
    println!(
        "Token: model {:?}, manufacturer {:?}, serial {}, label {:?}, PIN length {}..{}, initialised: {}",
        text(&info.model),
        text(&info.manufacturerID),
        text(&info.serialNumber),
        text(&info.label),
        info.ulMinPinLen,
        info.ulMaxPinLen,
        info.flags & CKF_TOKEN_INITIALIZED != 0
    );
    Ok(())
}

fn pin_flags(token: &Token) -> std::result::Result<String, String> {
    let flags = token
        .token_info(token.slot_id())
        .map_err(|e| e.to_string())?
        .flags;
    let names = [
        (CKF_USER_PIN_COUNT_LOW, "USER_PIN_COUNT_LOW"),
        (CKF_USER_PIN_FINAL_TRY, "USER_PIN_FINAL_TRY"),
        (CKF_USER_PIN_LOCKED, "USER_PIN_LOCKED"),
        (CKF_SO_PIN_COUNT_LOW, "SO_PIN_COUNT_LOW"),
        (CKF_SO_PIN_FINAL_TRY, "SO_PIN_FINAL_TRY"),
        (CKF_SO_PIN_LOCKED, "SO_PIN_LOCKED"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    Ok(if set.is_empty() {
        "-".into()
    } else {
        set.join(" | ")
    })
}
