//! Object management (PKCS#11 3.0 section 5.7): C_CreateObject, C_CopyObject,
//! C_DestroyObject, C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue and the find
//! functions; who may do what is spec section 4.

use std::collections::HashMap;
use std::sync::Arc;

use pkcs11_sys::*;

use super::attributes::{self, RawAttribute, Rule, Value};
use super::error::{Error, Result};
use super::keys;
use super::object::{sealing_aad, Attributes, Object, ObjectRecord, SecretAttributes, SecretSlot};
use super::session::{FindOperation, LoginState, Session};
use super::Token;
use crate::store::Lease;

/// A caller's template, decoded: (type, value) in the caller's order.
pub type Template = Vec<(CK_ATTRIBUTE_TYPE, Value)>;

/// How an object comes to be: the template rules differ (PKCS#11 table footnotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// C_CreateObject.
    Create,
    /// C_GenerateKey / C_GenerateKeyPair.
    Generate,
    /// C_UnwrapKey.
    Unwrap,
}

/// What C_GetAttributeValue found for one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeRead {
    /// The value in PKCS#11 encoding.
    Value(Vec<u8>),
    /// An attribute array (CKF_ARRAY_ATTRIBUTE): each element's type and value in PKCS#11
    /// encoding, by type.
    Array(Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>),
    /// CKR_ATTRIBUTE_SENSITIVE for this attribute.
    Sensitive,
    /// CKR_ATTRIBUTE_TYPE_INVALID for this attribute.
    TypeInvalid,
}

/// Decodes a caller's raw template for an object of known class (attribute kinds from the
/// policy table). Unknown types are CKR_ATTRIBUTE_TYPE_INVALID; a type given twice is
/// CKR_TEMPLATE_INCONSISTENT.
pub fn decode_template(raw: &[RawAttribute]) -> Result<Template> {
    let mut out: Template = Vec::with_capacity(raw.len());
    for (ty, bytes) in raw {
        let kind = attributes::kind_of(*ty).ok_or(Error::AttributeTypeInvalid)?;
        let value = kind.decode(bytes)?;
        if out.iter().any(|(t, _)| t == ty) {
            return Err(Error::TemplateInconsistent);
        }
        out.push((*ty, value));
    }
    Ok(out)
}

fn find_ulong(template: &Template, ty: CK_ATTRIBUTE_TYPE) -> Option<u64> {
    template
        .iter()
        .find(|(t, _)| *t == ty)
        .and_then(|(_, v)| v.as_ulong())
}

fn find_bool(template: &Template, ty: CK_ATTRIBUTE_TYPE) -> Option<bool> {
    template
        .iter()
        .find(|(t, _)| *t == ty)
        .and_then(|(_, v)| v.as_bool())
}

/// The class and key type a template names, checked against what the token supports.
pub fn class_and_key_type(
    template: &Template,
    key_type_default: Option<CK_KEY_TYPE>,
) -> Result<(CK_OBJECT_CLASS, Option<CK_KEY_TYPE>)> {
    let class =
        find_ulong(template, CKA_CLASS).ok_or(Error::TemplateIncomplete)? as CK_OBJECT_CLASS;
    if !attributes::class_supported(class) {
        return Err(Error::AttributeValueInvalid);
    }
    let key_type = match class {
        CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
            let kt = find_ulong(template, CKA_KEY_TYPE)
                .map(|k| k as CK_KEY_TYPE)
                .or(key_type_default)
                .ok_or(Error::TemplateIncomplete)?;
            if !keys::key_type_supported(class, kt) {
                return Err(Error::AttributeValueInvalid);
            }
            Some(kt)
        }
        _ => None,
    };
    if class == CKO_CERTIFICATE {
        match find_ulong(template, CKA_CERTIFICATE_TYPE) {
            Some(t) if t as CK_CERTIFICATE_TYPE == CKC_X_509 => {}
            Some(_) => return Err(Error::AttributeValueInvalid),
            None => return Err(Error::TemplateIncomplete),
        }
    }
    Ok((class, key_type))
}

/// Applies the attribute policy to a template: every attribute must belong to the object,
/// token-set ones are refused, required ones must be there, defaults fill the rest. Returns
/// the public attributes and the key material apart.
pub fn build_attributes(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
    template: &Template,
    origin: Origin,
) -> Result<(Attributes, SecretAttributes)> {
    let mut attrs = Attributes::new();
    let mut secrets = SecretAttributes::default();
    for (ty, value) in template {
        let rule: Rule =
            attributes::rule_for(*ty, class, key_type).ok_or(Error::AttributeTypeInvalid)?;
        if rule.flags & attributes::TOKEN_SET != 0 {
            return Err(Error::AttributeReadOnly);
        }
        if origin != Origin::Create && rule.flags & attributes::NO_GENERATE != 0 {
            return Err(Error::TemplateInconsistent);
        }
        if rule.flags & attributes::SECRET != 0 {
            secrets.0.push((*ty as u64, value.clone()));
        } else {
            attrs.insert(*ty, value.clone());
        }
    }
    for rule in attributes::rules_for(class, key_type) {
        let required = match origin {
            Origin::Create => rule.flags & attributes::REQUIRED_CREATE != 0,
            Origin::Generate => rule.flags & attributes::REQUIRED_GENERATE != 0,
            Origin::Unwrap => false,
        };
        let present = attrs.contains_key(&rule.ty) || secrets.get(rule.ty).is_some();
        if required && !present {
            return Err(Error::TemplateIncomplete);
        }
    }
    for (ty, value) in defaults(class, key_type, origin) {
        if !attrs.contains_key(&ty) {
            attrs.insert(ty, value);
        }
    }
    attrs.insert(CKA_CLASS, Value::Ulong(class as u64));
    if let Some(kt) = key_type {
        attrs.insert(CKA_KEY_TYPE, Value::Ulong(kt as u64));
    }
    Ok((attrs, secrets))
}

/// Defaults for attributes the template left out. Private and secret keys are private,
/// sensitive and non-extractable unless the template says otherwise (spec section 6).
fn defaults(
    class: CK_OBJECT_CLASS,
    key_type: Option<CK_KEY_TYPE>,
    origin: Origin,
) -> Vec<(CK_ATTRIBUTE_TYPE, Value)> {
    let t = || Value::Bool(true);
    let f = || Value::Bool(false);
    let empty = || Value::Bytes(Vec::new());
    let is_secret_or_private = matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY);
    let mut d = vec![
        (CKA_TOKEN, f()),
        (CKA_PRIVATE, Value::Bool(is_secret_or_private)),
        (CKA_MODIFIABLE, t()),
        (CKA_COPYABLE, t()),
        (CKA_DESTROYABLE, t()),
        (CKA_LABEL, empty()),
    ];
    match class {
        CKO_DATA => d.extend([
            (CKA_APPLICATION, empty()),
            (CKA_OBJECT_ID, empty()),
            (CKA_VALUE, empty()),
        ]),
        CKO_CERTIFICATE => d.extend([
            (CKA_TRUSTED, f()),
            (CKA_CERTIFICATE_CATEGORY, Value::Ulong(0)),
            (CKA_ID, empty()),
            (CKA_ISSUER, empty()),
            (CKA_SERIAL_NUMBER, empty()),
            (CKA_START_DATE, empty()),
            (CKA_END_DATE, empty()),
            (CKA_URL, empty()),
            (CKA_HASH_OF_SUBJECT_PUBLIC_KEY, empty()),
            (CKA_HASH_OF_ISSUER_PUBLIC_KEY, empty()),
            (CKA_JAVA_MIDP_SECURITY_DOMAIN, Value::Ulong(0)),
            (CKA_PUBLIC_KEY_INFO, empty()),
        ]),
        _ => {
            let local = origin == Origin::Generate;
            d.extend([
                (CKA_ID, empty()),
                (CKA_START_DATE, empty()),
                (CKA_END_DATE, empty()),
                (CKA_DERIVE, f()),
                (CKA_LOCAL, Value::Bool(local)),
                (
                    CKA_KEY_GEN_MECHANISM,
                    Value::Ulong(CK_UNAVAILABLE_INFORMATION as u64),
                ),
                (CKA_ALLOWED_MECHANISMS, Value::Ulongs(Vec::new())),
            ]);
            match class {
                // Usage defaults follow what the key type can do: EC and Edwards keys sign
                // and verify, RSA keys do everything, AES keys encrypt and wrap, generic
                // secrets sign (HMAC).
                CKO_PUBLIC_KEY => {
                    let rsa = key_type == Some(CKK_RSA);
                    d.extend([
                        (CKA_SUBJECT, empty()),
                        (CKA_ENCRYPT, Value::Bool(rsa)),
                        (CKA_VERIFY, t()),
                        (CKA_VERIFY_RECOVER, f()),
                        (CKA_WRAP, Value::Bool(rsa)),
                    ])
                }
                CKO_PRIVATE_KEY => {
                    let rsa = key_type == Some(CKK_RSA);
                    d.extend([
                        (CKA_SUBJECT, empty()),
                        (CKA_DECRYPT, Value::Bool(rsa)),
                        (CKA_SIGN, t()),
                        (CKA_SIGN_RECOVER, f()),
                        (CKA_UNWRAP, Value::Bool(rsa)),
                        (CKA_WRAP_WITH_TRUSTED, f()),
                        (CKA_ALWAYS_AUTHENTICATE, f()),
                    ])
                }
                _ => {
                    let aes = key_type == Some(CKK_AES);
                    d.extend([
                        (CKA_ENCRYPT, Value::Bool(aes)),
                        (CKA_DECRYPT, Value::Bool(aes)),
                        (CKA_SIGN, Value::Bool(!aes)),
                        (CKA_VERIFY, Value::Bool(!aes)),
                        (CKA_WRAP, Value::Bool(aes)),
                        (CKA_UNWRAP, Value::Bool(aes)),
                        (CKA_WRAP_WITH_TRUSTED, f()),
                        (CKA_TRUSTED, f()),
                    ])
                }
            }
            if class != CKO_PUBLIC_KEY {
                // Generation sets ALWAYS_SENSITIVE / NEVER_EXTRACTABLE from the final template;
                // an imported key was outside the token once.
                d.extend([
                    (CKA_SENSITIVE, t()),
                    (CKA_EXTRACTABLE, f()),
                    (CKA_ALWAYS_SENSITIVE, f()),
                    (CKA_NEVER_EXTRACTABLE, f()),
                ]);
            }
            if key_type == Some(CKK_RSA) && class == CKO_PUBLIC_KEY {
                d.push((CKA_PUBLIC_EXPONENT, Value::Bytes(vec![1, 0, 1])));
            }
        }
    }
    d
}

impl Token {
    /// Whether the application can see `object` now: private objects only while the User is
    /// logged in (the SO never sees them).
    fn visible(&self, object: &Object, login: LoginState) -> bool {
        !object.is_private() || login == LoginState::User
    }

    /// A visible object by handle.
    pub(crate) fn object(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        let object = self.objects.get(handle).ok_or(Error::ObjectHandleInvalid)?;
        if !self.visible(&object, self.login_state()) {
            return Err(Error::ObjectHandleInvalid);
        }
        Ok(object)
    }

    /// Spec section 4: keys and token objects need the User; token objects a R/W session;
    /// private objects can only be made by the User.
    pub(crate) fn check_may_write(
        &self,
        session: &Session,
        class: CK_OBJECT_CLASS,
        token: bool,
        private: bool,
    ) -> Result<()> {
        let is_key = matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY | CKO_SECRET_KEY);
        if (is_key || token || private) && self.login_state() != LoginState::User {
            return Err(Error::UserNotLoggedIn);
        }
        if token && !session.read_write {
            return Err(Error::SessionReadOnly);
        }
        Ok(())
    }

    /// C_CreateObject.
    pub fn create_object(
        &self,
        handle: CK_SESSION_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let session = self.session(handle)?;
        let template = decode_template(raw)?;
        let (class, key_type) = class_and_key_type(&template, None)?;
        let token = find_bool(&template, CKA_TOKEN).unwrap_or(false);
        let private = find_bool(&template, CKA_PRIVATE)
            .unwrap_or(matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY));
        self.check_may_write(&session, class, token, private)?;
        let (mut attrs, secrets) = build_attributes(class, key_type, &template, Origin::Create)?;
        let material = match key_type {
            Some(kt) => Some(keys::import(class, kt, &mut attrs, &secrets)?),
            None => None,
        };
        self.add_object(&session, attrs, secrets, material)
    }

    /// Stores a new object (durably, for token objects) and returns its handle.
    pub(crate) fn add_object(
        &self,
        session: &Session,
        attrs: Attributes,
        secrets: SecretAttributes,
        material: Option<keys::KeyMaterial>,
    ) -> Result<CK_OBJECT_HANDLE> {
        let object = self.prepare_object(session, attrs, secrets, material)?;
        Ok(self.commit_objects(vec![object])?[0])
    }

    /// Builds a new object (sealing its key material for the store) without publishing it.
    pub(crate) fn prepare_object(
        &self,
        session: &Session,
        attrs: Attributes,
        secrets: SecretAttributes,
        material: Option<keys::KeyMaterial>,
    ) -> Result<Object> {
        let class = attrs
            .get(&CKA_CLASS)
            .and_then(Value::as_ulong)
            .unwrap_or(CKO_DATA as u64) as CK_OBJECT_CLASS;
        let key_type = attrs
            .get(&CKA_KEY_TYPE)
            .and_then(Value::as_ulong)
            .map(|k| k as CK_KEY_TYPE);
        let token = attrs
            .get(&CKA_TOKEN)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let has_secrets = !secrets.0.is_empty();
        let (store_id, sealed) = if token {
            let id = self
                .store
                .new_object_id()
                .map_err(|e| Error::DeviceError(e.to_string()))?;
            let sealed = if has_secrets {
                let key = self
                    .user_master_key
                    .load_full()
                    .ok_or(Error::UserNotLoggedIn)?;
                let plain = zeroize::Zeroizing::new(
                    postcard::to_allocvec(&secrets)
                        .map_err(|e| Error::GeneralError(e.to_string()))?,
                );
                Some(
                    key.seal(&sealing_aad(id), &plain)
                        .map_err(|_| Error::DeviceError("the random generator failed".into()))?,
                )
            } else {
                None
            };
            (Some(id), sealed)
        } else {
            (None, None)
        };
        let slot = SecretSlot {
            sealed,
            ..Default::default()
        };
        if has_secrets {
            slot.plain.store(Some(Arc::new(secrets)));
        }
        if let Some(m) = material {
            slot.key.store(Some(Arc::new(m)));
        }
        let handle = self.objects.new_handle();
        let mut attrs = attrs;
        // CKA_UNIQUE_ID: the store record's key for token objects, the handle for session ones.
        let unique = match store_id {
            Some(id) => format!("{id:016x}"),
            None => format!("session-{handle}"),
        };
        attrs.insert(CKA_UNIQUE_ID, Value::Bytes(unique.into_bytes()));
        let object = Object {
            handle,
            store_id,
            owner: if token { None } else { Some(session.handle) },
            class,
            key_type,
            attrs,
            secret: Arc::new(slot),
        };
        Ok(object)
    }

    /// Publishes prepared objects: the token ones written in one atomic, flushed batch (a
    /// key pair is never half on disk), then all made visible. Returns their handles.
    pub(crate) fn commit_objects(&self, objects: Vec<Object>) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let records: Vec<(u64, ObjectRecord)> = objects
            .iter()
            .filter_map(|o| o.store_id.map(|id| (id, o.record())))
            .collect();
        // Kept until the objects are in the table: a reload meanwhile would add them twice.
        let _lease = if records.is_empty() {
            None
        } else {
            let lease = self.lease()?;
            self.store
                .put_objects_durable(&records)
                .map_err(|e| Error::DeviceError(e.to_string()))?;
            Some(lease)
        };
        let mut handles = Vec::with_capacity(objects.len());
        for object in objects {
            if matches!(
                object.class,
                CKO_PRIVATE_KEY | CKO_SECRET_KEY | CKO_PUBLIC_KEY
            ) {
                self.audit(
                    if object.flag(CKA_LOCAL) {
                        "key.generate"
                    } else {
                        "key.create"
                    },
                    &key_subject(&object),
                    "ok",
                );
            }
            handles.push(object.handle);
            self.objects.insert(Arc::new(object));
        }
        Ok(handles)
    }

    /// Reads every token object out of the store at start (key material stays sealed until
    /// first use), and writes the objects cache of them.
    pub(crate) fn load_objects(&self, uuid: [u8; 16]) -> Result<()> {
        self.store
            .load_objects(uuid, |id, record: ObjectRecord| {
                let handle = self.objects.new_handle();
                self.objects
                    .insert(Arc::new(stored_object(handle, id, record, None)));
            })
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        Ok(())
    }

    /// Brings the token objects in line with the store after other processes wrote to it:
    /// unchanged objects stay as they are, changed ones keep their handles, new ones get
    /// handles, removed ones go.
    pub(crate) fn reload_objects(&self) -> Result<()> {
        let mut known: HashMap<u64, Arc<Object>> = self
            .objects
            .all()
            .into_iter()
            .filter_map(|o| o.store_id.map(|id| (id, o)))
            .collect();
        let stored = parking_lot::Mutex::new(Vec::new());
        self.store
            .for_each_object(|id, record: ObjectRecord| stored.lock().push((id, record)))
            .map_err(|e| Error::DeviceError(e.to_string()))?;
        for (id, record) in stored.into_inner() {
            self.follow_store(known.remove(&id).as_ref(), id, Some(record));
        }
        for gone in known.into_values() {
            self.objects.remove(gone.handle);
        }
        Ok(())
    }

    /// Makes the object `known` (under store record `id`) what the store has: unchanged, the
    /// same handle with the new record, a new handle for a new record, or gone.
    fn follow_store(&self, known: Option<&Arc<Object>>, id: u64, stored: Option<ObjectRecord>) {
        match (known, stored) {
            (Some(old), Some(record)) if old.record() == record => {}
            (Some(old), Some(record)) => {
                // Unsealed key material stays valid while the sealed copy is the same.
                let slot = (old.secret.sealed == record.sealed).then(|| old.secret.clone());
                self.objects
                    .replace(Arc::new(stored_object(old.handle, id, record, slot)));
            }
            (None, Some(record)) => {
                let handle = self.objects.new_handle();
                self.objects
                    .insert(Arc::new(stored_object(handle, id, record, None)));
            }
            (Some(old), None) => {
                self.objects.remove(old.handle);
            }
            (None, None) => {}
        }
    }

    /// [`Token::reload_objects`] for the object records `ids` only (the store's journal of
    /// what other processes changed): each is replaced, added or removed as the store has it.
    pub(crate) fn reload_changed_objects(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let wanted: std::collections::HashSet<u64> = ids.iter().copied().collect();
        let known: HashMap<u64, Arc<Object>> = self
            .objects
            .all()
            .into_iter()
            .filter_map(|o| {
                o.store_id
                    .filter(|id| wanted.contains(id))
                    .map(|id| (id, o))
            })
            .collect();
        for &id in ids {
            let stored: Option<ObjectRecord> = self
                .store
                .object(id)
                .map_err(|e| Error::DeviceError(e.to_string()))?;
            self.follow_store(known.get(&id), id, stored);
        }
        Ok(())
    }

    /// The object's key material in clear: unsealed with the User's master key on first use.
    pub(crate) fn secrets_of(&self, object: &Object) -> Result<Arc<SecretAttributes>> {
        if let Some(plain) = object.secret.plain.load_full() {
            return Ok(plain);
        }
        let (Some(sealed), Some(id)) = (&object.secret.sealed, object.store_id) else {
            return Ok(Arc::new(SecretAttributes::default()));
        };
        let key = self
            .user_master_key
            .load_full()
            .ok_or(Error::UserNotLoggedIn)?;
        let plain = key.open(&sealing_aad(id), sealed).ok_or_else(|| {
            Error::DeviceError(format!(
                "object {id}: its key material does not open under the master key"
            ))
        })?;
        let secrets: SecretAttributes = postcard::from_bytes(&plain)
            .map_err(|e| Error::DeviceError(format!("object {id}: {e}")))?;
        let secrets = Arc::new(secrets);
        object.secret.plain.store(Some(secrets.clone()));
        Ok(secrets)
    }

    /// The object's parsed key, built on first use and kept while the User is logged in.
    pub(crate) fn key_of(&self, object: &Object) -> Result<Arc<keys::KeyMaterial>> {
        if let Some(key) = object.secret.key.load_full() {
            return Ok(key);
        }
        let kt = object.key_type.ok_or(Error::KeyTypeInconsistent)?;
        let secrets = self.secrets_of(object)?;
        let key = Arc::new(keys::KeyMaterial::from_attributes(
            object.class,
            kt,
            &object.attrs,
            &secrets,
        )?);
        object.secret.key.store(Some(key.clone()));
        Ok(key)
    }

    /// C_DestroyObject.
    pub fn destroy_object(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let session = self.session(handle)?;
        let (object, _lease) = self.object_to_change(object)?;
        self.check_may_write(&session, object.class, object.store_id.is_some(), false)?;
        if !object
            .attrs
            .get(&CKA_DESTROYABLE)
            .and_then(Value::as_bool)
            .unwrap_or(true)
        {
            return Err(Error::ActionProhibited);
        }
        if object.key_type.is_some() {
            self.audit("key.delete", &key_subject(&object), "ok");
        }
        if let Some(id) = object.store_id {
            self.store
                .delete_object_durable(id)
                .map_err(|e| Error::DeviceError(e.to_string()))?;
        }
        self.objects.remove(object.handle);
        Ok(())
    }

    /// C_GetObjectSize: the bytes of every attribute value.
    pub fn object_size(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
    ) -> Result<CK_ULONG> {
        self.session(handle)?;
        let object = self.object(object)?;
        let public: usize = object.attrs.values().map(Value::encoded_len).sum();
        let sealed = object
            .secret
            .sealed
            .as_ref()
            .map_or(0, |s| s.ciphertext.len());
        Ok((public + sealed) as CK_ULONG)
    }

    /// C_GetAttributeValue: every requested attribute is processed.
    pub fn get_attributes(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        self.session(handle)?;
        let object = self.object(object)?;
        let mut secrets: Option<Result<Arc<SecretAttributes>>> = None;
        Ok(types
            .iter()
            .map(|&ty| {
                let Some(rule) = attributes::rule_for(ty, object.class, object.key_type) else {
                    return AttributeRead::TypeInvalid;
                };
                if rule.flags & attributes::SECRET == 0 {
                    return match object.attrs.get(&ty) {
                        Some(Value::Template(t)) => AttributeRead::Array(
                            t.iter()
                                .map(|(t, v)| (*t as CK_ATTRIBUTE_TYPE, v.encode()))
                                .collect(),
                        ),
                        Some(v) => AttributeRead::Value(v.encode()),
                        // An attribute array the object was given none of: empty.
                        None if rule.kind == attributes::Kind::Template => {
                            AttributeRead::Array(Vec::new())
                        }
                        None => AttributeRead::Value(Vec::new()),
                    };
                }
                if !object.reveals_secrets() {
                    return AttributeRead::Sensitive;
                }
                let all = secrets.get_or_insert_with(|| self.secrets_of(&object));
                match all {
                    Ok(s) => AttributeRead::Value(s.get(ty).map(Value::encode).unwrap_or_default()),
                    // Key material that cannot be unsealed now (no User login) is not revealed.
                    Err(_) => AttributeRead::Sensitive,
                }
            })
            .collect())
    }

    /// C_SetAttributeValue.
    pub fn set_attributes(
        &self,
        handle: CK_SESSION_HANDLE,
        object: CK_OBJECT_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<()> {
        let session = self.session(handle)?;
        let (object, _lease) = self.object_to_change(object)?;
        self.check_may_write(&session, object.class, object.store_id.is_some(), false)?;
        if !object.flag(CKA_MODIFIABLE) {
            return Err(Error::ActionProhibited);
        }
        let template = decode_template(raw)?;
        let mut attrs = object.attrs.clone();
        for (ty, value) in template {
            let rule = attributes::rule_for(ty, object.class, object.key_type)
                .ok_or(Error::AttributeTypeInvalid)?;
            if rule.flags & attributes::MODIFIABLE == 0 {
                return Err(Error::AttributeReadOnly);
            }
            check_one_way(&object.attrs, ty, &value)?;
            attrs.insert(ty, value);
        }
        self.replace_object(&object, attrs)
    }

    /// The object a C_SetAttributeValue or C_DestroyObject changes. A token object is looked up
    /// again under a lease, after any reload: between a look-up and the write another process
    /// may take the store and destroy or change the object, and a write made without the lease
    /// would bring a destroyed object back. The lease is kept until the change is written.
    fn object_to_change(
        &self,
        handle: CK_OBJECT_HANDLE,
    ) -> Result<(Arc<Object>, Option<Lease<'_>>)> {
        let object = self.object(handle)?;
        if object.store_id.is_none() {
            return Ok((object, None));
        }
        let lease = self.lease()?;
        Ok((self.object(handle)?, Some(lease)))
    }

    /// Makes a new version of `object` with other attributes, durably for token objects.
    fn replace_object(&self, object: &Object, attrs: Attributes) -> Result<()> {
        let new = Object {
            attrs,
            ..object.with_handle(object.handle)
        };
        if let Some(id) = new.store_id {
            self.store
                .put_object_durable(id, &new.record())
                .map_err(|e| Error::DeviceError(e.to_string()))?;
        }
        // A concurrent C_DestroyObject or C_Logout took the handle away: do not resurrect it.
        if !self.objects.replace(Arc::new(new)) {
            return Err(Error::ObjectHandleInvalid);
        }
        Ok(())
    }

    /// C_CopyObject.
    pub fn copy_object(
        &self,
        handle: CK_SESSION_HANDLE,
        source: CK_OBJECT_HANDLE,
        raw: &[RawAttribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let session = self.session(handle)?;
        let source = self.object(source)?;
        if !source
            .attrs
            .get(&CKA_COPYABLE)
            .and_then(Value::as_bool)
            .unwrap_or(true)
        {
            return Err(Error::ActionProhibited);
        }
        let template = decode_template(raw)?;
        let mut attrs = source.attrs.clone();
        for (ty, value) in template {
            let rule = attributes::rule_for(ty, source.class, source.key_type)
                .ok_or(Error::AttributeTypeInvalid)?;
            if rule.flags & (attributes::COPY_MODIFIABLE | attributes::MODIFIABLE) == 0 {
                return Err(Error::AttributeReadOnly);
            }
            check_one_way(&source.attrs, ty, &value)?;
            attrs.insert(ty, value);
        }
        let token = attrs
            .get(&CKA_TOKEN)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let private = attrs
            .get(&CKA_PRIVATE)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.check_may_write(&session, source.class, token, private)?;
        let secrets = if source.secret.sealed.is_some() || source.secret.plain.load().is_some() {
            (*self.secrets_of(&source)?).clone()
        } else {
            SecretAttributes::default()
        };
        let material = source.secret.key.load_full();
        let handle = self.add_object(&session, attrs, secrets, None)?;
        if let (Some(m), Some(copy)) = (material, self.objects.get(handle)) {
            copy.secret.key.store(Some(m));
        }
        Ok(handle)
    }

    /// C_FindObjectsInit: the matches are fixed now, in handle order.
    pub fn find_objects_init(&self, handle: CK_SESSION_HANDLE, raw: &[RawAttribute]) -> Result<()> {
        let session = self.session(handle)?;
        self.sync()?;
        let mut ops = session.ops.lock();
        if ops.find.is_some() {
            return Err(Error::OperationActive);
        }
        let mut template = Vec::with_capacity(raw.len());
        let mut unknown = false;
        for (ty, bytes) in raw {
            match attributes::kind_of(*ty) {
                Some(kind) => template.push((*ty, kind.decode(bytes)?)),
                // No object has an attribute the token does not know.
                None => unknown = true,
            }
        }
        let login = self.login_state();
        let mut handles: Vec<CK_OBJECT_HANDLE> = if unknown {
            Vec::new()
        } else {
            self.objects
                .candidates(&template)
                .into_iter()
                .filter(|o| self.visible(o, login) && matches(o, &template))
                .map(|o| o.handle)
                .collect()
        };
        handles.sort_unstable();
        ops.find = Some(FindOperation { handles, next: 0 });
        Ok(())
    }

    /// C_FindObjects: up to `max` more matches.
    pub fn find_objects(
        &self,
        handle: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        let find = ops.find.as_mut().ok_or(Error::OperationNotInitialized)?;
        let end = find.handles.len().min(find.next.saturating_add(max));
        let out = find.handles[find.next..end].to_vec();
        find.next = end;
        Ok(out)
    }

    /// C_FindObjectsFinal.
    pub fn find_objects_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(handle)?;
        let mut ops = session.ops.lock();
        ops.find
            .take()
            .map(|_| ())
            .ok_or(Error::OperationNotInitialized)
    }
}

/// Whether `object` has every attribute of `template` with the same value. Key material never
/// matches: a search must not reveal a secret.
fn matches(object: &Object, template: &[(CK_ATTRIBUTE_TYPE, Value)]) -> bool {
    template.iter().all(|(ty, v)| match object.attrs.get(ty) {
        Some(have) => have == v,
        None => false,
    })
}

/// CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED can only be turned on, CKA_EXTRACTABLE only off
/// (PKCS#11 table footnotes 11 and 12).
fn check_one_way(current: &Attributes, ty: CK_ATTRIBUTE_TYPE, value: &Value) -> Result<()> {
    let now = current.get(&ty).and_then(Value::as_bool);
    let new = value.as_bool();
    let refused = match ty {
        CKA_SENSITIVE | CKA_WRAP_WITH_TRUSTED => now == Some(true) && new == Some(false),
        CKA_EXTRACTABLE => now == Some(false) && new == Some(true),
        _ => false,
    };
    if refused {
        Err(Error::AttributeReadOnly)
    } else {
        Ok(())
    }
}

/// How the audit log names a key: class, label and CKA_ID.
fn key_subject(object: &Object) -> String {
    let class = match object.class {
        CKO_PRIVATE_KEY => "private key",
        CKO_PUBLIC_KEY => "public key",
        _ => "secret key",
    };
    let id: String = object
        .bytes(CKA_ID)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{class} {:?} id {id}",
        String::from_utf8_lossy(object.bytes(CKA_LABEL))
    )
}

/// A token object as its store record describes it.
pub(crate) fn stored_object(
    handle: CK_OBJECT_HANDLE,
    id: u64,
    record: ObjectRecord,
    secret: Option<Arc<SecretSlot>>,
) -> Object {
    Object {
        handle,
        store_id: Some(id),
        owner: None,
        class: record.class as CK_OBJECT_CLASS,
        key_type: record.key_type.map(|k| k as CK_KEY_TYPE),
        attrs: record.attrs,
        secret: secret.unwrap_or_else(|| {
            Arc::new(SecretSlot {
                sealed: record.sealed,
                ..Default::default()
            })
        }),
    }
}
