//! Objects and the in-memory object table with its find index.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use dashmap::DashMap;
use pkcs11_sys::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::attributes::Value;
use super::keys::KeyMaterial;
use crate::crypto::master_key::Sealed;

/// An object's attributes, sorted by type: one allocation per object (a map of nodes took
/// several, and building it was most of loading a large token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(CK_ATTRIBUTE_TYPE, Value)>);

impl Attributes {
    /// No attribute.
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    fn find(&self, ty: CK_ATTRIBUTE_TYPE) -> Result<usize, usize> {
        self.0.binary_search_by_key(&ty, |(t, _)| *t)
    }

    /// The value of `ty`.
    pub fn get(&self, ty: &CK_ATTRIBUTE_TYPE) -> Option<&Value> {
        self.find(*ty).ok().map(|i| &self.0[i].1)
    }

    /// Whether `ty` is present.
    pub fn contains_key(&self, ty: &CK_ATTRIBUTE_TYPE) -> bool {
        self.find(*ty).is_ok()
    }

    /// Sets `ty` to `value`; returns the value it replaced.
    pub fn insert(&mut self, ty: CK_ATTRIBUTE_TYPE, value: Value) -> Option<Value> {
        match self.find(ty) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (ty, value));
                None
            }
        }
    }

    /// Removes `ty`; returns its value.
    pub fn remove(&mut self, ty: &CK_ATTRIBUTE_TYPE) -> Option<Value> {
        self.find(*ty).ok().map(|i| self.0.remove(i).1)
    }

    /// Every attribute, by type.
    pub fn iter(&self) -> impl Iterator<Item = (&CK_ATTRIBUTE_TYPE, &Value)> {
        self.0.iter().map(|(t, v)| (t, v))
    }

    /// Every value, by type.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl FromIterator<(CK_ATTRIBUTE_TYPE, Value)> for Attributes {
    /// Later values of a type replace earlier ones, as inserting them in turn would.
    fn from_iter<I: IntoIterator<Item = (CK_ATTRIBUTE_TYPE, Value)>>(iter: I) -> Attributes {
        let mut pairs: Vec<_> = iter.into_iter().collect();
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable: of equal types, the last one given stays last; keep it.
            pairs.sort_by_key(|(t, _)| *t);
            let mut kept: Vec<(CK_ATTRIBUTE_TYPE, Value)> = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match kept.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => kept.push(pair),
                }
            }
            pairs = kept;
        }
        Attributes(pairs)
    }
}

/// Stored as a map: a count and (type, value) pairs in type order, as the first stores wrote
/// them.
impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(t, v)| (t, v)))
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        // (A map and a sequence of pairs are the same bytes in the store's encoding.)
        Ok(Vec::<(CK_ATTRIBUTE_TYPE, Value)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// Key material attributes (CKA_VALUE of a secret key, RSA private components, ...), zeroized
/// when dropped.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretAttributes(pub Vec<(u64, Value)>);

impl SecretAttributes {
    /// The value of one secret attribute.
    pub fn get(&self, ty: CK_ATTRIBUTE_TYPE) -> Option<&Value> {
        self.0.iter().find(|(t, _)| *t == ty as u64).map(|(_, v)| v)
    }
}

impl Drop for SecretAttributes {
    fn drop(&mut self) {
        for (_, v) in self.0.iter_mut() {
            match v {
                Value::Bytes(b) => b.zeroize(),
                Value::Ulongs(u) => u.zeroize(),
                Value::Ulong(u) => u.zeroize(),
                Value::Bool(b) => b.zeroize(),
                // Key material holds no attribute array; were one there, it goes too.
                Value::Template(t) => t.clear(),
            }
        }
    }
}

impl std::fmt::Debug for SecretAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretAttributes({} hidden)", self.0.len())
    }
}

/// Where an object's key material is: sealed in the store, and (once needed, while the User
/// is logged in) decrypted and parsed in memory.
#[derive(Debug, Default)]
pub struct SecretSlot {
    /// Token objects: the secret attributes sealed under the token master key.
    pub sealed: Option<Sealed>,
    /// The secret attributes in clear; session objects keep them for their lifetime.
    pub plain: ArcSwapOption<SecretAttributes>,
    /// The parsed key, ready for operations.
    pub key: ArcSwapOption<KeyMaterial>,
}

impl SecretSlot {
    /// Forgets what was decrypted (on logout); sealed material stays.
    pub fn forget(&self) {
        if self.sealed.is_some() {
            self.plain.store(None);
            self.key.store(None);
        }
    }
}

/// One object. Immutable: C_SetAttributeValue replaces the table's `Arc<Object>`, so an
/// operation that holds the old one is never disturbed.
#[derive(Debug)]
pub struct Object {
    /// The object's handle in this process.
    pub handle: CK_OBJECT_HANDLE,
    /// For token objects, the record's key in the store.
    pub store_id: Option<u64>,
    /// For session objects, the session that owns it.
    pub owner: Option<CK_SESSION_HANDLE>,
    /// CKA_CLASS.
    pub class: CK_OBJECT_CLASS,
    /// CKA_KEY_TYPE, for keys.
    pub key_type: Option<CK_KEY_TYPE>,
    /// Every attribute except the key material.
    pub attrs: Attributes,
    /// The key material, shared by every version of the object.
    pub secret: Arc<SecretSlot>,
}

impl Object {
    /// A boolean attribute, false when absent.
    pub fn flag(&self, ty: CK_ATTRIBUTE_TYPE) -> bool {
        self.attrs
            .get(&ty)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// A byte-string attribute, empty when absent.
    pub fn bytes(&self, ty: CK_ATTRIBUTE_TYPE) -> &[u8] {
        self.attrs.get(&ty).and_then(Value::as_bytes).unwrap_or(&[])
    }

    /// CKA_PRIVATE.
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    /// Private and secret keys: the objects whose use needs the User.
    pub fn is_private_or_secret_key(&self) -> bool {
        matches!(self.class, CKO_PRIVATE_KEY | CKO_SECRET_KEY)
    }

    /// The key material may leave the token in clear (not sensitive, extractable).
    pub fn reveals_secrets(&self) -> bool {
        !self.flag(CKA_SENSITIVE) && self.flag(CKA_EXTRACTABLE)
    }

    /// The same object under another handle.
    pub fn with_handle(&self, handle: CK_OBJECT_HANDLE) -> Object {
        Object {
            handle,
            store_id: self.store_id,
            owner: self.owner,
            class: self.class,
            key_type: self.key_type,
            attrs: self.attrs.clone(),
            secret: self.secret.clone(),
        }
    }

    /// The record that stores this object.
    pub fn record(&self) -> ObjectRecord {
        ObjectRecord {
            class: self.class as u64,
            key_type: self.key_type.map(|k| k as u64),
            attrs: self.attrs.clone(),
            sealed: self.secret.sealed.clone(),
        }
    }
}

/// A token object as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// CKA_CLASS.
    pub class: u64,
    /// CKA_KEY_TYPE.
    pub key_type: Option<u64>,
    /// Every attribute except key material, by attribute type. Encoded as a sequence of
    /// (type, value) pairs, as the first stores wrote them. CK_ATTRIBUTE_TYPE is `u64` on the
    /// LP64 systems key4c builds for, so this is [`Attributes`] itself: loading a record
    /// builds no second map.
    pub attrs: Attributes,
    /// Key material sealed under the token master key.
    pub sealed: Option<Sealed>,
}

/// The additional data that binds sealed key material to its record.
pub fn sealing_aad(store_id: u64) -> Vec<u8> {
    let mut aad = b"key4c object ".to_vec();
    aad.extend_from_slice(&store_id.to_be_bytes());
    aad
}

/// Attributes the find index covers: a find naming one of them touches only its matches.
const INDEXED: [CK_ATTRIBUTE_TYPE; 2] = [CKA_LABEL, CKA_ID];

/// The object table: every object of the token and of its sessions, by handle, with an index
/// on CKA_LABEL and CKA_ID. Sharded maps: no lock is shared by all callers.
#[derive(Default)]
pub struct Objects {
    map: DashMap<CK_OBJECT_HANDLE, Arc<Object>>,
    index: DashMap<(CK_ATTRIBUTE_TYPE, Vec<u8>), Vec<CK_OBJECT_HANDLE>>,
    next_handle: AtomicU64,
}

impl Objects {
    /// A new handle, never reused in this process.
    pub fn new_handle(&self) -> CK_OBJECT_HANDLE {
        self.next_handle.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The object with this handle.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        self.map.get(&handle).map(|o| o.clone())
    }

    /// Adds (or replaces) an object.
    pub fn insert(&self, object: Arc<Object>) {
        if let Some(old) = self.map.insert(object.handle, object.clone()) {
            self.unindex(&old);
        }
        self.index_object(&object);
    }

    fn index_object(&self, object: &Object) {
        for ty in INDEXED {
            if let Some(Value::Bytes(v)) = object.attrs.get(&ty) {
                self.index
                    .entry((ty, v.clone()))
                    .or_default()
                    .push(object.handle);
            }
        }
    }

    /// Replaces an object by a new version of it, unless it was removed (or re-handled)
    /// meanwhile; says whether it did.
    pub fn replace(&self, object: Arc<Object>) -> bool {
        let old = match self.map.get_mut(&object.handle) {
            Some(mut slot) => std::mem::replace(&mut *slot, object.clone()),
            None => return false,
        };
        self.unindex(&old);
        self.index_object(&object);
        true
    }

    /// Removes an object.
    pub fn remove(&self, handle: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        let (_, old) = self.map.remove(&handle)?;
        self.unindex(&old);
        Some(old)
    }

    fn unindex(&self, object: &Object) {
        for ty in INDEXED {
            if let Some(Value::Bytes(v)) = object.attrs.get(&ty) {
                let key = (ty, v.clone());
                let now_empty = match self.index.get_mut(&key) {
                    Some(mut handles) => {
                        handles.retain(|h| *h != object.handle);
                        handles.is_empty()
                    }
                    None => false,
                };
                if now_empty {
                    self.index.remove_if(&key, |_, h| h.is_empty());
                }
            }
        }
    }

    /// Objects that may match `template`: through the index when it names an indexed
    /// attribute, else every object.
    pub fn candidates(&self, template: &[(CK_ATTRIBUTE_TYPE, Value)]) -> Vec<Arc<Object>> {
        let indexed = template.iter().find_map(|(ty, v)| match v {
            Value::Bytes(b) if INDEXED.contains(ty) => Some((*ty, b.clone())),
            _ => None,
        });
        match indexed {
            Some(key) => match self.index.get(&key) {
                Some(handles) => handles.iter().filter_map(|h| self.get(*h)).collect(),
                None => Vec::new(),
            },
            None => self.map.iter().map(|o| o.clone()).collect(),
        }
    }

    /// Every object, in no particular order.
    pub fn all(&self) -> Vec<Arc<Object>> {
        self.map.iter().map(|o| o.clone()).collect()
    }

    /// Removes every object for which `f` holds.
    pub fn remove_where(&self, f: impl Fn(&Object) -> bool) {
        let doomed: Vec<CK_OBJECT_HANDLE> =
            self.map.iter().filter(|o| f(o)).map(|o| o.handle).collect();
        for h in doomed {
            self.remove(h);
        }
    }

    /// Gives every object for which `f` holds a new handle: handles obtained before stop
    /// working (C_Logout, PKCS#11 3.0 section 5.6), the objects stay.
    pub fn rehandle_where(&self, f: impl Fn(&Object) -> bool) {
        let moved: Vec<CK_OBJECT_HANDLE> =
            self.map.iter().filter(|o| f(o)).map(|o| o.handle).collect();
        for h in moved {
            if let Some(old) = self.remove(h) {
                self.insert(Arc::new(old.with_handle(self.new_handle())));
            }
        }
    }
}
