//! Object management (PKCS#11 3.0 section 5.7).

use pkcs11_sys::*;

use super::{output, template, token};
use crate::token::objects::AttributeRead;
use crate::token::Error;

cryptoki_fn! {
    /// Creates an object from a template.
    fn C_CreateObject(hSession: CK_SESSION_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG, phObject: CK_OBJECT_HANDLE_PTR) {
        let token = token()?;
        if phObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = token.create_object(hSession, &template(pTemplate, ulCount)?)?;
        output(phObject, handle)
    }
}

cryptoki_fn! {
    /// Copies an object, changing the attributes the template names.
    fn C_CopyObject(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
        phNewObject: CK_OBJECT_HANDLE_PTR,
    ) {
        let token = token()?;
        if phNewObject.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = token.copy_object(hSession, hObject, &template(pTemplate, ulCount)?)?;
        output(phNewObject, handle)
    }
}

cryptoki_fn! {
    /// Destroys an object.
    fn C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE) {
        token()?.destroy_object(hSession, hObject)
    }
}

cryptoki_fn! {
    /// The object's size in bytes.
    fn C_GetObjectSize(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pulSize: CK_ULONG_PTR) {
        let token = token()?;
        if pulSize.is_null() {
            return Err(Error::ArgumentsBad);
        }
        output(pulSize, token.object_size(hSession, hObject)?)
    }
}

cryptoki_fn! {
    /// Reads attributes. Every attribute of the template is processed; when several fail,
    /// CKR_ATTRIBUTE_SENSITIVE wins over CKR_ATTRIBUTE_TYPE_INVALID over CKR_BUFFER_TOO_SMALL.
    /// An attribute array (CKA_WRAP_TEMPLATE, ...) is `n * sizeof(CK_ATTRIBUTE)` long and is
    /// handed out element by element ([`fill_array`]).
    fn C_GetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG) {
        let token = token()?;
        // An absurd count (a 2^32 template over a buffer of one) is refused before anything
        // is read or allocated, as in every other template reader.
        if (pTemplate.is_null() && ulCount != 0) || ulCount > super::MAX_TEMPLATE {
            return Err(Error::ArgumentsBad);
        }
        let count = usize::try_from(ulCount).map_err(|_| Error::ArgumentsBad)?;
        let attrs: &mut [CK_ATTRIBUTE] = if count == 0 { &mut [] } else { std::slice::from_raw_parts_mut(pTemplate, count) };
        let types: Vec<CK_ATTRIBUTE_TYPE> = attrs.iter().map(|a| a.type_).collect();
        let reads = token.get_attributes(hSession, hObject, &types)?;
        let (mut sensitive, mut invalid, mut small) = (false, false, false);
        for (attr, read) in attrs.iter_mut().zip(reads) {
            match read {
                AttributeRead::Value(v) => {
                    if attr.pValue.is_null() {
                        attr.ulValueLen = v.len() as CK_ULONG;
                    } else if (attr.ulValueLen as usize) < v.len() {
                        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        small = true;
                    } else {
                        std::ptr::copy_nonoverlapping(v.as_ptr(), attr.pValue as *mut u8, v.len());
                        attr.ulValueLen = v.len() as CK_ULONG;
                    }
                }
                AttributeRead::Array(elements) => {
                    let need = elements.len() * std::mem::size_of::<CK_ATTRIBUTE>();
                    if attr.pValue.is_null() {
                        attr.ulValueLen = need as CK_ULONG;
                    } else if (attr.ulValueLen as usize) < need {
                        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        small = true;
                    } else {
                        let (too_small, unknown) = fill_array(attr.pValue as CK_ATTRIBUTE_PTR, &elements);
                        attr.ulValueLen = need as CK_ULONG;
                        small |= too_small;
                        invalid |= unknown;
                    }
                }
                AttributeRead::Sensitive => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    sensitive = true;
                }
                AttributeRead::TypeInvalid => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    invalid = true;
                }
            }
        }
        if sensitive {
            Err(Error::AttributeSensitive)
        } else if invalid {
            Err(Error::AttributeTypeInvalid)
        } else if small {
            Err(Error::BufferTooSmall)
        } else {
            Ok(())
        }
    }
}

/// Hands out an attribute array (CKF_ARRAY_ATTRIBUTE) into the caller's CK_ATTRIBUTEs, one per
/// element (PKCS#11 3.0 section 5.7, C_GetAttributeValue, the note on attribute arrays). When
/// every element's pValue is NULL, the caller asks what the array holds: each element gets the
/// type and length of one attribute, in the token's order. Otherwise each element is read as
/// an attribute of its own: its type looked up in the array (absent: CK_UNAVAILABLE_INFORMATION
/// and CKR_ATTRIBUTE_TYPE_INVALID), a NULL pValue gets the length, a short one
/// CK_UNAVAILABLE_INFORMATION and CKR_BUFFER_TOO_SMALL. Returns (too small, type invalid).
unsafe fn fill_array(
    ptr: CK_ATTRIBUTE_PTR,
    elements: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
) -> (bool, bool) {
    let (mut small, mut invalid) = (false, false);
    // (The array lies in a caller's byte buffer: maybe unaligned.)
    let mut slots: Vec<CK_ATTRIBUTE> = (0..elements.len())
        .map(|i| ptr.add(i).read_unaligned())
        .collect();
    if slots.iter().all(|a| a.pValue.is_null()) {
        for (slot, (ty, v)) in slots.iter_mut().zip(elements) {
            slot.type_ = *ty;
            slot.ulValueLen = v.len() as CK_ULONG;
        }
    } else {
        for slot in slots.iter_mut() {
            match elements.iter().find(|(ty, _)| *ty == slot.type_) {
                None => {
                    slot.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    invalid = true;
                }
                Some((_, v)) if slot.pValue.is_null() => slot.ulValueLen = v.len() as CK_ULONG,
                Some((_, v)) if (slot.ulValueLen as usize) < v.len() => {
                    slot.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    small = true;
                }
                Some((_, v)) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), slot.pValue as *mut u8, v.len());
                    slot.ulValueLen = v.len() as CK_ULONG;
                }
            }
        }
    }
    for (i, slot) in slots.into_iter().enumerate() {
        ptr.add(i).write_unaligned(slot);
    }
    (small, invalid)
}

cryptoki_fn! {
    /// Changes attributes.
    fn C_SetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG) {
        let token = token()?;
        token.set_attributes(hSession, hObject, &template(pTemplate, ulCount)?)
    }
}

cryptoki_fn! {
    /// Starts a search; the matches are fixed when it starts.
    fn C_FindObjectsInit(hSession: CK_SESSION_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG) {
        let token = token()?;
        token.find_objects_init(hSession, &template(pTemplate, ulCount)?)
    }
}

cryptoki_fn! {
    /// Returns up to `ulMaxObjectCount` more matches.
    fn C_FindObjects(
        hSession: CK_SESSION_HANDLE,
        phObject: CK_OBJECT_HANDLE_PTR,
        ulMaxObjectCount: CK_ULONG,
        pulObjectCount: CK_ULONG_PTR,
    ) {
        let token = token()?;
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount != 0) {
            return Err(Error::ArgumentsBad);
        }
        let max = usize::try_from(ulMaxObjectCount).map_err(|_| Error::ArgumentsBad)?;
        let found = token.find_objects(hSession, max)?;
        if !found.is_empty() {
            std::ptr::copy_nonoverlapping(found.as_ptr(), phObject, found.len());
        }
        output(pulObjectCount, found.len() as CK_ULONG)
    }
}

cryptoki_fn! {
    /// Ends the search.
    fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) {
        token()?.find_objects_final(hSession)
    }
}
