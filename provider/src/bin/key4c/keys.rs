//! `key4c keys`: the token's keys as the console lists them (label, algorithm, CKA_ID,
//! created date), generated for the JWT algorithms, deleted, and their public halves
//! exported as PEM or JWK. Every command logs the User in.
//!
//! The creation date is the key's CKA_START_DATE, which `keys generate` sets to the day of
//! generation (UTC); keys made by other tools without it show no date.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::{Args, Subcommand, ValueEnum};
use key4c_pkcs11::crypto::ec::EcCurve;
use key4c_pkcs11::token::attributes::{RawAttribute, RawValue};
use key4c_pkcs11::token::mechanisms::Mechanism;
use key4c_pkcs11::token::objects::AttributeRead;
use key4c_pkcs11::token::Token;
use pkcs11_sys::*;
use serde_json::json;

use crate::context::{login, Ctx, Role};
use crate::error::{CliError, Result};
use crate::pin_input::{self, USER_PIN};
use crate::progress::Spinner;
use crate::util::{b64url, ck_date_text, ck_date_today, hex, print_json, unhex};

/// CKA_EC_PARAMS of Ed25519: the OID 1.3.101.112.
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// `key4c keys ...`
#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the keys: label, kind, algorithm, CKA_ID and created date.
    List(ListArgs),
    /// Generate a key (a token object with a label and a CKA_ID) for a JWT algorithm.
    Generate(GenerateArgs),
    /// Delete a key (both halves of a key pair).
    Delete(DeleteArgs),
    /// Export a public key as PEM (SubjectPublicKeyInfo) or as a JWK.
    Export(ExportArgs),
}

/// The User PIN option every `keys` command has.
#[derive(Args)]
pub struct UserPinArg {
    /// File holding the User PIN (else KEY4C_USER_PIN, else a prompt on a terminal).
    #[arg(long, value_name = "FILE")]
    user_pin_file: Option<PathBuf>,
}

/// Which key: by label or by CKA_ID.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Select {
    /// The key's label (CKA_LABEL).
    #[arg(long)]
    label: Option<String>,
    /// The key's CKA_ID, in hex.
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
}

/// Options of `keys list`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pin: UserPinArg,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `keys generate`.
#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pin: UserPinArg,
    /// The algorithm the key is for.
    #[arg(long, value_enum, ignore_case = true)]
    alg: Alg,
    /// The key's label; no other key may have it.
    #[arg(long)]
    label: String,
    /// RSA modulus size for RS*/PS* keys: 2048, 3072 or 4096.
    #[arg(long)]
    bits: Option<u32>,
    /// CKA_ID in hex (default: the SHA-1 of the public key for a pair, 20 random bytes for a
    /// secret key).
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `keys delete`.
#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pin: UserPinArg,
    #[command(flatten)]
    select: Select,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

/// Options of `keys export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pin: UserPinArg,
    #[command(flatten)]
    select: Select,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Pem)]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// PEM "PUBLIC KEY" (SubjectPublicKeyInfo, RFC 7468).
    Pem,
    /// JSON Web Key (RFC 7517), kid = hex CKA_ID.
    Jwk,
}

/// The algorithms `keys generate` makes keys for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Alg {
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// ECDSA P-384 with SHA-384.
    #[value(name = "ES384")]
    Es384,
    /// ECDSA P-521 with SHA-512.
    #[value(name = "ES512")]
    Es512,
    /// RSA PKCS#1 v1.5 with SHA-256 (--bits, default 2048).
    #[value(name = "RS256")]
    Rs256,
    /// RSA PKCS#1 v1.5 with SHA-384 (--bits, default 2048).
    #[value(name = "RS384")]
    Rs384,
    /// RSA PKCS#1 v1.5 with SHA-512 (--bits, default 2048).
    #[value(name = "RS512")]
    Rs512,
    /// RSA-PSS with SHA-256 (--bits, default 2048).
    #[value(name = "PS256")]
    Ps256,
    /// RSA-PSS with SHA-384 (--bits, default 2048).
    #[value(name = "PS384")]
    Ps384,
    /// RSA-PSS with SHA-512 (--bits, default 2048).
    #[value(name = "PS512")]
    Ps512,
    /// Ed25519.
    #[value(name = "EdDSA", alias = "Ed25519")]
    EdDsa,
    /// HMAC-SHA-256: a 32-byte generic secret.
    #[value(name = "HS256")]
    Hs256,
    /// HMAC-SHA-384: a 48-byte generic secret.
    #[value(name = "HS384")]
    Hs384,
    /// HMAC-SHA-512: a 64-byte generic secret.
    #[value(name = "HS512")]
    Hs512,
    /// AES-128 (encryption and key wrapping).
    #[value(name = "AES-128", alias = "AES128")]
    Aes128,
    /// AES-192.
    #[value(name = "AES-192", alias = "AES192")]
    Aes192,
    /// AES-256.
    #[value(name = "AES-256", alias = "AES256")]
    Aes256,
}

/// What generating for an algorithm means.
enum Recipe {
    /// An EC key pair on this curve.
    Ec(EcCurve),
    /// An RSA key pair (bits from --bits).
    Rsa,
    /// An Ed25519 key pair.
    Ed25519,
    /// A secret key of this mechanism and length in bytes.
    Secret(Mechanism, u64),
}

impl Alg {
    /// The algorithm's name, as `--alg` takes it.
    fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Aes128 => "AES-128",
            Alg::Aes192 => "AES-192",
            Alg::Aes256 => "AES-256",
        }
    }

    fn recipe(self) -> Recipe {
        match self {
            Alg::Es256 => Recipe::Ec(EcCurve::P256),
            Alg::Es384 => Recipe::Ec(EcCurve::P384),
            Alg::Es512 => Recipe::Ec(EcCurve::P521),
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                Recipe::Rsa
            }
            Alg::EdDsa => Recipe::Ed25519,
            Alg::Hs256 => Recipe::Secret(Mechanism::GenericSecretKeyGen, 32),
            Alg::Hs384 => Recipe::Secret(Mechanism::GenericSecretKeyGen, 48),
            Alg::Hs512 => Recipe::Secret(Mechanism::GenericSecretKeyGen, 64),
            Alg::Aes128 => Recipe::Secret(Mechanism::AesKeyGen, 16),
            Alg::Aes192 => Recipe::Secret(Mechanism::AesKeyGen, 24),
            Alg::Aes256 => Recipe::Secret(Mechanism::AesKeyGen, 32),
        }
    }
}

/// Runs a `keys` command.
pub fn run(ctx: &Ctx, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::List(a) => list(ctx, a),
        KeysCommand::Generate(a) => generate(ctx, a),
        KeysCommand::Delete(a) => delete(ctx, a),
        KeysCommand::Export(a) => export(ctx, a),
    }
}

/// A template being built, in PKCS#11's in-memory encoding.
#[derive(Default)]
struct Template(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>);

impl Template {
    fn bool(mut self, ty: CK_ATTRIBUTE_TYPE, v: bool) -> Self {
        self.0.push((ty, vec![u8::from(v)]));
        self
    }

    fn ulong(mut self, ty: CK_ATTRIBUTE_TYPE, v: u64) -> Self {
        self.0.push((ty, (v as CK_ULONG).to_ne_bytes().to_vec()));
        self
    }

    fn bytes(mut self, ty: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Self {
        self.0.push((ty, v.to_vec()));
        self
    }

    fn opt_bytes(self, ty: CK_ATTRIBUTE_TYPE, v: Option<&[u8]>) -> Self {
        match v {
            Some(v) => self.bytes(ty, v),
            None => self,
        }
    }

    fn raw(&self) -> Vec<RawAttribute<'_>> {
        self.0
            .iter()
            .map(|(t, v)| (*t, RawValue::Bytes(v.as_slice())))
            .collect()
    }
}

/// Every object matching `template` that the session sees.
fn find(token: &Token, h: CK_SESSION_HANDLE, template: &Template) -> Result<Vec<CK_OBJECT_HANDLE>> {
    token.find_objects_init(h, &template.raw())?;
    let found = token.find_objects(h, usize::MAX);
    token.find_objects_final(h)?;
    Ok(found?)
}

/// The attributes of a key the commands use.
struct KeyObject {
    handle: CK_OBJECT_HANDLE,
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    label: String,
    id: Vec<u8>,
    start_date: Vec<u8>,
    ec_params: Vec<u8>,
    modulus: Vec<u8>,
    value_len: Option<u64>,
}

fn ulong(bytes: &[u8]) -> Option<u64> {
    let b: [u8; std::mem::size_of::<CK_ULONG>()] = bytes.try_into().ok()?;
    Some(CK_ULONG::from_ne_bytes(b) as u64)
}

/// Reads one attribute's value; absent, sensitive or foreign to the class read as empty.
fn attribute(
    token: &Token,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    ty: CK_ATTRIBUTE_TYPE,
) -> Result<Vec<u8>> {
    Ok(match token.get_attributes(h, o, &[ty])?.pop() {
        Some(AttributeRead::Value(v)) => v,
        _ => Vec::new(),
    })
}

fn read_key(token: &Token, h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> Result<Option<KeyObject>> {
    let class = ulong(&attribute(token, h, o, CKA_CLASS)?).unwrap_or(u64::MAX) as CK_OBJECT_CLASS;
    if !matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        return Ok(None);
    }
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ok(Some(KeyObject {
        handle: o,
        class,
        key_type: ulong(&attribute(token, h, o, CKA_KEY_TYPE)?).unwrap_or(u64::MAX) as CK_KEY_TYPE,
        label: text(attribute(token, h, o, CKA_LABEL)?),
        id: attribute(token, h, o, CKA_ID)?,
        start_date: attribute(token, h, o, CKA_START_DATE)?,
        ec_params: attribute(token, h, o, CKA_EC_PARAMS)?,
        modulus: attribute(token, h, o, CKA_MODULUS)?,
        value_len: ulong(&attribute(token, h, o, CKA_VALUE_LEN)?),
    }))
}

/// Every key object the session sees, in handle order.
fn keys_matching(
    token: &Token,
    h: CK_SESSION_HANDLE,
    template: &Template,
) -> Result<Vec<KeyObject>> {
    let mut out = Vec::new();
    for o in find(token, h, template)? {
        if let Some(k) = read_key(token, h, o)? {
            out.push(k);
        }
    }
    Ok(out)
}

/// The console's name for a key's algorithm, and the JWT algorithms it serves.
fn algorithm(k: &KeyObject) -> (String, Vec<&'static str>) {
    match k.key_type {
        CKK_EC => match EcCurve::from_params(&k.ec_params) {
            Ok(EcCurve::P256) => ("EC P-256".into(), vec!["ES256"]),
            Ok(EcCurve::P384) => ("EC P-384".into(), vec!["ES384"]),
            Ok(EcCurve::P521) => ("EC P-521".into(), vec!["ES512"]),
            Err(_) => ("EC".into(), vec![]),
        },
        CKK_RSA => {
            let m = &k.modulus[k.modulus.iter().take_while(|b| **b == 0).count()..];
            let bits = m.len() * 8 - m.first().map_or(0, |b| b.leading_zeros() as usize);
            (
                format!("RSA {bits}"),
                vec!["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            )
        }
        CKK_EC_EDWARDS => ("Ed25519".into(), vec!["EdDSA"]),
        CKK_GENERIC_SECRET => {
            let len = k.value_len.unwrap_or(0);
            let algs = match len {
                64.. => vec!["HS256", "HS384", "HS512"],
                48..=63 => vec!["HS256", "HS384"],
                32..=47 => vec!["HS256"],
                _ => vec![],
            };
            (format!("HMAC {}-bit", len * 8), algs)
        }
        CKK_AES => (format!("AES-{}", k.value_len.unwrap_or(0) * 8), vec![]),
        _ => ("unknown".into(), vec![]),
    }
}

/// One row of the key list: the objects of one key (a pair's two halves share label and ID).
struct Row<'a> {
    objects: Vec<&'a KeyObject>,
}

impl Row<'_> {
    fn first(&self) -> &KeyObject {
        self.objects[0]
    }

    fn kind(&self) -> &'static str {
        let has = |c| self.objects.iter().any(|o| o.class == c);
        match (has(CKO_PUBLIC_KEY), has(CKO_PRIVATE_KEY)) {
            (true, true) => "key pair",
            (false, true) => "private key",
            (true, false) => "public key",
            _ => "secret key",
        }
    }

    fn created(&self) -> Option<String> {
        self.objects
            .iter()
            .find_map(|o| ck_date_text(&o.start_date))
    }
}

fn rows(keys: &[KeyObject]) -> Vec<Row<'_>> {
    let mut groups: BTreeMap<(Vec<u8>, String, CK_KEY_TYPE, bool), Row<'_>> = BTreeMap::new();
    let mut order = Vec::new();
    for k in keys {
        let group = (
            k.id.clone(),
            k.label.clone(),
            k.key_type,
            k.class == CKO_SECRET_KEY,
        );
        groups
            .entry(group.clone())
            .or_insert_with(|| {
                order.push(group);
                Row {
                    objects: Vec::new(),
                }
            })
            .objects
            .push(k);
    }
    order
        .into_iter()
        .filter_map(|g| groups.remove(&g))
        .collect()
}

/// `keys list`.
fn list(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let pin = pin_input::read(&USER_PIN, args.pin.user_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    let session = login(&token, Role::User, &pin)?;
    let keys = keys_matching(&token, session.handle, &Template::default())?;
    let rows = rows(&keys);
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter()
                .map(|r| {
                    let (algorithm, jwt) = algorithm(r.first());
                    json!({
                        "label": r.first().label,
                        "kind": r.kind(),
                        "algorithm": algorithm,
                        "jwt_algs": jwt,
                        "id": hex(&r.first().id),
                        "created": r.created(),
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    if rows.is_empty() {
        println!("No keys.");
        return Ok(());
    }
    println!(
        "{:<24} {:<12} {:<28} {:<42} CREATED",
        "LABEL", "KIND", "ALGORITHM", "CKA_ID"
    );
    for r in &rows {
        let (algorithm, jwt) = algorithm(r.first());
        let algorithm = match jwt.as_slice() {
            [] => algorithm,
            [first, ..] if first.starts_with("RS") => format!("{algorithm} (RS*/PS*)"),
            _ => format!("{algorithm} ({})", jwt.join(", ")),
        };
        println!(
            "{:<24} {:<12} {:<28} {:<42} {}",
            r.first().label,
            r.kind(),
            algorithm,
            hex(&r.first().id),
            r.created().unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// `keys generate`.
fn generate(ctx: &Ctx, args: GenerateArgs) -> Result<()> {
    let recipe = args.alg.recipe();
    let bits = match (&recipe, args.bits) {
        (Recipe::Rsa, None) => 2048,
        (Recipe::Rsa, Some(b @ (2048 | 3072 | 4096))) => b,
        (Recipe::Rsa, Some(b)) => {
            return Err(CliError::new(format!(
                "--bits {b} is not a size the token generates: use 2048, 3072 or 4096"
            )))
        }
        (_, Some(_)) => {
            return Err(CliError::new(format!(
                "--bits applies to RS*/PS* keys only, not to {}",
                args.alg.name()
            )))
        }
        (_, None) => 0,
    };
    if args.label.is_empty() {
        return Err(CliError::new("the label must not be empty"));
    }
    let given_id = match &args.id {
        Some(s) => Some(
            unhex(s)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CliError::new(format!("--id {s:?} is not hex")))?,
        ),
        None => None,
    };
    let pin = pin_input::read(&USER_PIN, args.pin.user_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    let session = login(&token, Role::User, &pin)?;
    let h = session.handle;
    let taken = keys_matching(
        &token,
        h,
        &Template::default().bytes(CKA_LABEL, args.label.as_bytes()),
    )?;
    if !taken.is_empty() {
        return Err(CliError::new(format!(
            "a key labelled {:?} exists already (CKA_ID {}): choose another label",
            args.label,
            hex(&taken[0].id)
        )));
    }
    if let Some(id) = &given_id {
        if !keys_matching(&token, h, &Template::default().bytes(CKA_ID, id))?.is_empty() {
            return Err(CliError::new(format!(
                "a key with CKA_ID {} exists already",
                hex(id)
            )));
        }
    }
    let today = ck_date_today();
    let common = |private: bool| {
        Template::default()
            .bool(CKA_TOKEN, true)
            .bool(CKA_PRIVATE, private)
            .bytes(CKA_LABEL, args.label.as_bytes())
            .bytes(CKA_START_DATE, &today)
            .opt_bytes(CKA_ID, given_id.as_deref())
    };
    let secret_attrs = |t: Template| t.bool(CKA_SENSITIVE, true).bool(CKA_EXTRACTABLE, false);
    let what = match &recipe {
        Recipe::Rsa => format!("RSA-{bits}"),
        _ => args.alg.name().to_string(),
    };
    let spinner = Spinner::start(format!("generating the {what} key"));
    let made = match recipe {
        Recipe::Secret(mechanism, len) => {
            let id = match &given_id {
                Some(_) => None,
                None => Some(
                    key4c_pkcs11::crypto::random_array::<20>()
                        .map_err(|_| CliError::new("the random generator failed"))?,
                ),
            };
            let template = secret_attrs(common(true))
                .ulong(CKA_VALUE_LEN, len)
                .opt_bytes(CKA_ID, id.as_ref().map(|i| &i[..]));
            token.generate_key(h, mechanism, &template.raw())
        }
        pair => {
            let (mechanism, public) = match pair {
                Recipe::Ec(curve) => (
                    Mechanism::EcKeyPairGen,
                    common(false).bytes(CKA_EC_PARAMS, curve.params_der()),
                ),
                Recipe::Ed25519 => (
                    Mechanism::EdwardsKeyPairGen,
                    common(false).bytes(CKA_EC_PARAMS, ED25519_PARAMS),
                ),
                _ => (
                    Mechanism::RsaKeyPairGen,
                    common(false)
                        .ulong(CKA_MODULUS_BITS, u64::from(bits))
                        .bytes(CKA_PUBLIC_EXPONENT, &[1, 0, 1]),
                ),
            };
            let public = public.bool(CKA_VERIFY, true);
            let private = secret_attrs(common(true)).bool(CKA_SIGN, true);
            token
                .generate_key_pair(h, mechanism, &public.raw(), &private.raw())
                .map(|(_, private)| private)
        }
    };
    drop(spinner);
    let handle = made?;
    let key = read_key(&token, h, handle)?
        .ok_or_else(|| CliError::new("the generated key cannot be read back"))?;
    let (algorithm, _) = algorithm(&key);
    let kind = if key.class == CKO_SECRET_KEY {
        "secret key"
    } else {
        "key pair"
    };
    if args.json {
        print_json(&json!({
            "label": key.label,
            "alg": args.alg.name(),
            "algorithm": algorithm,
            "kind": kind,
            "id": hex(&key.id),
            "created": ck_date_text(&key.start_date),
        }));
    } else {
        println!(
            "Generated {} {kind} {:?} ({algorithm}), CKA_ID {}.",
            args.alg.name(),
            key.label,
            hex(&key.id)
        );
    }
    Ok(())
}

/// The keys `select` names, checked to be one key.
fn selected<'a>(keys: &'a [KeyObject], select: &Select) -> Result<Vec<&'a KeyObject>> {
    let what = match (&select.label, &select.id) {
        (Some(l), _) => format!("labelled {l:?}"),
        (_, Some(i)) => format!("with CKA_ID {i}"),
        _ => String::new(),
    };
    if keys.is_empty() {
        return Err(CliError::new(format!("there is no key {what}")));
    }
    let rows = rows(keys);
    if rows.len() > 1 {
        let ids: Vec<String> = rows.iter().map(|r| hex(&r.first().id)).collect();
        return Err(CliError::new(format!(
            "{} keys are {what} (CKA_IDs {}): choose one with --id",
            rows.len(),
            ids.join(", ")
        )));
    }
    Ok(keys.iter().collect())
}

fn select_template(select: &Select) -> Result<Template> {
    Ok(match (&select.label, &select.id) {
        (Some(label), _) => Template::default().bytes(CKA_LABEL, label.as_bytes()),
        (_, Some(id)) => Template::default().bytes(
            CKA_ID,
            &unhex(id).ok_or_else(|| CliError::new(format!("--id {id:?} is not hex")))?,
        ),
        _ => Template::default(),
    })
}

/// `keys delete`.
fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let template = select_template(&args.select)?;
    let pin = pin_input::read(&USER_PIN, args.pin.user_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    let session = login(&token, Role::User, &pin)?;
    let keys = keys_matching(&token, session.handle, &template)?;
    let chosen = selected(&keys, &args.select)?;
    let row = Row {
        objects: chosen.clone(),
    };
    let name = format!(
        "{} {:?} (CKA_ID {})",
        row.kind(),
        row.first().label,
        hex(&row.first().id)
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::new(format!(
                "deleting the {name} cannot be undone: add --yes to confirm"
            )));
        }
        eprint!("Delete the {name}? This cannot be undone. [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::new(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(CliError::new("nothing deleted"));
        }
    }
    for k in &chosen {
        token.destroy_object(session.handle, k.handle)?;
    }
    println!("Deleted the {name}.");
    Ok(())
}

/// Splits one DER TLV off `input`: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The public key bits of a SubjectPublicKeyInfo (the BIT STRING's content).
fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = der(spki)? else {
        return None;
    };
    let (0x30, _, rest) = der(body)? else {
        return None;
    };
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    bits.split_first()
        .filter(|(unused, _)| **unused == 0)
        .map(|(_, k)| k)
}

/// The EC or Ed25519 point: CKA_EC_POINT (a DER OCTET STRING, or bare), else the SPKI's.
fn point<'a>(ec_point: &'a [u8], spki: &'a [u8]) -> Option<&'a [u8]> {
    if !ec_point.is_empty() {
        return match der(ec_point) {
            Some((0x04, p, [])) => Some(p),
            _ => Some(ec_point),
        };
    }
    spki_key(spki)
}

/// `keys export`.
fn export(ctx: &Ctx, args: ExportArgs) -> Result<()> {
    let template = select_template(&args.select)?;
    let pin = pin_input::read(&USER_PIN, args.pin.user_pin_file.as_deref(), false)?;
    let token = ctx.open()?;
    let session = login(&token, Role::User, &pin)?;
    let h = session.handle;
    let keys = keys_matching(&token, h, &template)?;
    let chosen = selected(&keys, &args.select)?;
    let key = chosen
        .iter()
        .find(|k| k.class == CKO_PUBLIC_KEY)
        .or_else(|| chosen.iter().find(|k| k.class == CKO_PRIVATE_KEY))
        .ok_or_else(|| {
            CliError::new(format!(
                "{:?} is a secret key: it has no public key to export",
                chosen[0].label
            ))
        })?;
    let spki = attribute(&token, h, key.handle, CKA_PUBLIC_KEY_INFO)?;
    let text = match args.format {
        Format::Pem => {
            if spki.is_empty() {
                return Err(CliError::new(
                    "the key has no CKA_PUBLIC_KEY_INFO to export",
                ));
            }
            let b64 = STANDARD.encode(&spki);
            let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END PUBLIC KEY-----\n");
            pem
        }
        Format::Jwk => {
            let jwk = jwk(&token, h, key, &spki)?;
            serde_json::to_string_pretty(&jwk).unwrap_or_default() + "\n"
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|e| CliError::io("write", path, e))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// The JWK of a public key (RFC 7517/7518/8037); kid is the hex CKA_ID.
fn jwk(
    token: &Token,
    h: CK_SESSION_HANDLE,
    key: &KeyObject,
    spki: &[u8],
) -> Result<serde_json::Value> {
    let kid = hex(&key.id);
    let strip = |b: &[u8]| b[b.iter().take_while(|x| **x == 0).count()..].to_vec();
    let malformed = || CliError::new("the key's public point is malformed");
    Ok(match key.key_type {
        CKK_EC => {
            let curve = EcCurve::from_params(&key.ec_params)
                .map_err(|_| CliError::new("the key's curve is not one a JWK names"))?;
            let (crv, alg, len) = match curve {
                EcCurve::P256 => ("P-256", "ES256", 32),
                EcCurve::P384 => ("P-384", "ES384", 48),
                EcCurve::P521 => ("P-521", "ES512", 66),
            };
            let ec_point = attribute(token, h, key.handle, CKA_EC_POINT)?;
            let p = point(&ec_point, spki).ok_or_else(malformed)?;
            if p.len() != 1 + 2 * len || p[0] != 0x04 {
                return Err(malformed());
            }
            json!({
                "kty": "EC", "crv": crv,
                "x": b64url(&p[1..1 + len]), "y": b64url(&p[1 + len..]),
                "kid": kid, "use": "sig", "alg": alg,
            })
        }
        CKK_EC_EDWARDS => {
            let ec_point = attribute(token, h, key.handle, CKA_EC_POINT)?;
            let p = point(&ec_point, spki).ok_or_else(malformed)?;
            if p.len() != 32 {
                return Err(malformed());
            }
            json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64url(p),
                "kid": kid, "use": "sig", "alg": "EdDSA",
            })
        }
        CKK_RSA => {
            let e = attribute(token, h, key.handle, CKA_PUBLIC_EXPONENT)?;
            json!({
                "kty": "RSA", "n": b64url(&strip(&key.modulus)), "e": b64url(&strip(&e)),
                "kid": kid, "use": "sig",
            })
        }
        _ => return Err(CliError::new("this key type has no JWK form here")),
    })
}
