//! `key4c service`: the console's service page — create the service (token, PINs, API key),
//! show it, and issue a new API key.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use key4c_pkcs11::crypto::random_fill;
use key4c_pkcs11::token::service::{PinState, ServiceInfo};
use key4c_pkcs11::token::{pin_policy, Token, MODEL};
use serde_json::json;
use zeroize::Zeroizing;

use crate::context::{login, Ctx, Role};
use crate::error::{CliError, Result};
use crate::pin_input::{self, SO_PIN, USER_PIN};
use crate::util::{b64url, date_of, hyphenated, print_json};

/// `key4c service ...`
#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Create the service: initialise the token with the SO PIN, set the User PIN, issue the
    /// API key (printed once). Both PINs are checked against the policy before the store is
    /// touched.
    Create(CreateArgs),
    /// Show the service page: service, HSM and token information, and the API key's state.
    Show(ShowArgs),
    /// Issue a new API key (needs the SO PIN), printed once; the old key stops working.
    ApiKey(ApiKeyArgs),
}

/// Options of `service create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Token label (CK_TOKEN_INFO.label), up to 32 bytes.
    #[arg(long, default_value = "key4c")]
    label: String,
    /// File holding the SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// File holding the User PIN (else KEY4C_USER_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    user_pin_file: Option<PathBuf>,
    /// Print the result as JSON (it holds the API key).
    #[arg(long)]
    json: bool,
}

/// Options of `service show`.
#[derive(Args)]
pub struct ShowArgs {
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `service api-key`.
#[derive(Args)]
pub struct ApiKeyArgs {
    /// File holding the SO PIN (else KEY4C_SO_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `service` command.
pub fn run(ctx: &Ctx, command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::Create(a) => create(ctx, a),
        ServiceCommand::Show(a) => show(ctx, a),
        ServiceCommand::ApiKey(a) => api_key(ctx, a),
    }
}

/// A new API key: 32 random bytes, base64url.
fn new_api_key() -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    random_fill(&mut bytes[..]).map_err(|_| CliError::new("the random generator failed"))?;
    Ok(Zeroizing::new(b64url(&bytes[..])))
}

/// `service create`. Everything that can be checked is checked before the store is opened
/// (both PINs against the policy, the label). Then C_InitToken, C_Login(SO), C_InitPIN and
/// the API key. A token cannot be un-initialised, so a failure after C_InitToken (a full
/// disk, say) is completed forward instead: run again with the same SO PIN, and a token
/// that is initialised but has no User PIN gets its User PIN and API key.
fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let so_pin = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), true)?;
    let user_pin = pin_input::read(&USER_PIN, args.user_pin_file.as_deref(), true)?;
    pin_input::check_policy("SO PIN", &so_pin)?;
    pin_input::check_policy("User PIN", &user_pin)?;
    if args.label.len() > 32 {
        return Err(CliError::new(format!(
            "the label {:?} is longer than 32 bytes",
            args.label
        )));
    }
    let token = ctx.open_or_create()?;
    let info = token.service_info();
    let resumed = match (&info.token_created, info.user) {
        (None, _) => {
            let label = key4c_pkcs11::token::padded(&args.label);
            token.init_token(token.slot_id(), &so_pin, &label)?;
            false
        }
        (Some(_), PinState::NotSet) => true,
        (Some(created), _) => {
            return Err(CliError::new(format!(
                "the service {} already exists (token created {}): `key4c service show` shows it",
                hyphenated(&info.uuid),
                date_of(created)
            )))
        }
    };
    let unfinished = |what: &str, e: CliError| {
        CliError::new(format!(
            "the token is initialised but {what} failed ({e}); run `key4c service create` again with the same SO PIN to finish"
        ))
    };
    {
        let session = login(&token, Role::So, &so_pin).map_err(|e| {
            if resumed {
                e
            } else {
                unfinished("the SO login", e)
            }
        })?;
        token
            .init_pin(session.handle, &user_pin)
            .map_err(|e| unfinished("setting the User PIN", e.into()))?;
    }
    let key = new_api_key()?;
    token.set_api_key(&key).map_err(|e| {
        CliError::new(format!(
            "the token is created but the API key could not be issued ({}); issue one with `key4c service api-key`",
            CliError::from(e)
        ))
    })?;
    let info = token.service_info();
    let created = info.token_created.clone().unwrap_or_default();
    let uuid = hyphenated(&info.uuid);
    if args.json {
        print_json(&json!({
            "uuid": uuid,
            "serial": &info.uuid[..16],
            "label": info.label,
            "token_created": created,
            "api_key": key.as_str(),
            "completed_earlier_run": resumed,
        }));
    } else {
        if resumed {
            println!("Finished the service an earlier run began.");
        }
        println!("Service created.");
        println!("  UUID            {uuid}");
        println!("  Token created   {}", date_of(&created));
        println!(
            "  Label           {}",
            info.label.as_deref().unwrap_or_default()
        );
        println!("  API key         {}", key.as_str());
        println!();
        println!("The API key is shown only now: the token keeps only its SHA-256.");
        println!("Bind the module to this service in its configuration:");
        println!("  uuid = \"{uuid}\"");
        println!("  api_key = \"{}\"", key.as_str());
    }
    Ok(())
}

/// `service api-key`: a new key, after the SO's authentication.
fn api_key(ctx: &Ctx, args: ApiKeyArgs) -> Result<()> {
    let so_pin = pin_input::read(&SO_PIN, args.so_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    drop(login(&token, Role::So, &so_pin)?);
    let key = new_api_key()?;
    token.set_api_key(&key)?;
    if args.json {
        print_json(&json!({ "uuid": hyphenated(&token.service_uuid()), "api_key": key.as_str() }));
    } else {
        println!("New API key: {}", key.as_str());
        println!("It is shown only now (the token keeps only its SHA-256); the previous key no longer works.");
    }
    Ok(())
}

/// One PIN's line of the page.
fn pin_json(state: PinState, failures: u32, limit: u32) -> serde_json::Value {
    let left = match state {
        PinState::Locked | PinState::UnlockRequested => 0,
        PinState::NotSet => limit,
        _ => limit.saturating_sub(failures).max(1),
    };
    json!({ "state": state.name(), "failures": failures, "attempts_left": left })
}

fn pin_text(state: PinState, failures: u32, limit: u32) -> String {
    match state {
        PinState::CountLow | PinState::FinalTry => format!(
            "{} ({failures} wrong attempt{} in a row, {} left)",
            state.name(),
            crate::util::plural(u64::from(failures)),
            limit.saturating_sub(failures).max(1)
        ),
        _ => state.name().to_string(),
    }
}

/// `service show`.
fn show(ctx: &Ctx, args: ShowArgs) -> Result<()> {
    let token = ctx.open()?;
    let info = token.service_info();
    let page = Page::new(ctx, &token, &info);
    if args.json {
        print_json(&page.json());
    } else {
        page.print();
    }
    Ok(())
}

/// The service page's content.
struct Page<'a> {
    info: &'a ServiceInfo,
    config: &'a key4c_pkcs11::config::Config,
    binding: key4c_pkcs11::token::admin::Binding,
}

impl<'a> Page<'a> {
    fn new(ctx: &'a Ctx, token: &Token, info: &'a ServiceInfo) -> Page<'a> {
        Page {
            info,
            config: &ctx.config,
            binding: ctx.binding(token),
        }
    }

    fn json(&self) -> serde_json::Value {
        let i = self.info;
        let c = self.config;
        let limit = i.pin_retry_limit.unwrap_or(c.pin_retry_limit);
        json!({
            "service": {
                "uuid": hyphenated(&i.uuid),
                "serial": &i.uuid[..16],
                "token_created": i.token_created,
                "label": i.label,
            },
            "hsm": {
                "manufacturer": c.manufacturer,
                "model": MODEL,
                "hardware_version": format!("{}.{}", c.hardware_version.major, c.hardware_version.minor),
                "firmware_version": format!("{}.{}", c.firmware_version.major, c.firmware_version.minor),
                "pin_length": { "min": pin_policy::MIN_PIN_LEN, "max": pin_policy::MAX_PIN_LEN },
            },
            "token": {
                "initialized": i.token_created.is_some(),
                "pin_retry_limit": limit,
                "so_pin": pin_json(i.so, i.so_failures, limit),
                "user_pin": pin_json(i.user, i.user_failures, limit),
                "so_unlock_request": i.unlock_request.as_ref().map(|r| json!({
                    "id": crate::util::hex(&r.id),
                    "email": r.email,
                    "requested": r.requested,
                })),
            },
            "api_key": {
                "issued": i.api_key_issued,
                "note": "only the API key's SHA-256 is kept: it is shown once, when issued",
            },
            "config_binding": {
                "uuid": self.binding.uuid.name(),
                "api_key": self.binding.api_key.name(),
                "token_shown_by_module": self.binding.token_shown(),
            },
        })
    }

    fn print(&self) {
        let i = self.info;
        let c = self.config;
        let limit = i.pin_retry_limit.unwrap_or(c.pin_retry_limit);
        let row = |k: &str, v: &str| println!("  {k:<18}{v}");
        println!("Service");
        row("UUID", &hyphenated(&i.uuid));
        match &i.token_created {
            Some(t) => row("Token created", &format!("{} ({t})", date_of(t))),
            None => row(
                "Token created",
                "not yet (create it with `key4c service create`)",
            ),
        }
        if let Some(label) = &i.label {
            row("Label", label);
        }
        println!("HSM");
        row("Manufacturer", &c.manufacturer);
        row("Model", MODEL);
        row(
            "HW / FW version",
            &format!(
                "{}.{} / {}.{}",
                c.hardware_version.major,
                c.hardware_version.minor,
                c.firmware_version.major,
                c.firmware_version.minor
            ),
        );
        row(
            "PIN length",
            &format!("{} ~ {}", pin_policy::MIN_PIN_LEN, pin_policy::MAX_PIN_LEN),
        );
        println!("Token");
        row("SO PIN", &pin_text(i.so, i.so_failures, limit));
        row("User PIN", &pin_text(i.user, i.user_failures, limit));
        if i.pin_retry_limit.is_some() {
            row(
                "PIN retry limit",
                &format!(
                    "{limit} (the token's own; the SO changes it with `key4c pin retry-limit`)"
                ),
            );
        }
        if let Some(r) = &i.unlock_request {
            row(
                "Unlock request",
                &format!("filed {} for {}", date_of(&r.requested), r.email),
            );
        }
        println!("API key");
        row(
            "API key",
            if i.api_key_issued {
                "issued (only its SHA-256 is kept: it was shown once, when issued)"
            } else {
                "not issued"
            },
        );
        println!("Configuration");
        row("uuid", self.binding.uuid.name());
        row("api_key", self.binding.api_key.name());
        if i.pin_retry_limit.is_some_and(|l| l != c.pin_retry_limit) {
            row(
                "pin_retry_limit",
                &format!(
                    "{}: ignored, the token's own limit ({limit}) counts",
                    c.pin_retry_limit
                ),
            );
        }
        if !self.binding.token_shown() {
            println!(
                "  The module shows no token with this configuration: fix its uuid or api_key."
            );
        }
    }
}
