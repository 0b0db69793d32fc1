//! Encryption, decryption and key wrapping (PKCS#11 3.0 sections 5.8, 5.9, 5.14).

use pkcs11_sys::*;

use super::mechanism::mechanism;
use super::{in_operation, input, output, produce, template, token};
use crate::token::Error;

cryptoki_fn! {
    /// Starts an encryption.
    fn C_EncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) {
        let token = token()?;
        token.cipher_init(hSession, mechanism(pMechanism)?, hKey, false)
    }
}

cryptoki_fn! {
    /// Encrypts in one call.
    fn C_Encrypt(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pEncryptedData: CK_BYTE_PTR, pulEncryptedDataLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_ENCRYPT, || {
            let data = input(pData, ulDataLen)?;
            produce(pEncryptedData, pulEncryptedDataLen, |out| token.cipher(hSession, data, out, false))
        })
    }
}

cryptoki_fn! {
    /// Encrypts one more part.
    fn C_EncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_ENCRYPT, || {
            let part = input(pPart, ulPartLen)?;
            produce(pEncryptedPart, pulEncryptedPartLen, |out| token.cipher_update(hSession, part, out, false))
        })
    }
}

cryptoki_fn! {
    /// Finishes a multi-part encryption.
    fn C_EncryptFinal(hSession: CK_SESSION_HANDLE, pLastEncryptedPart: CK_BYTE_PTR, pulLastEncryptedPartLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_ENCRYPT, || {
            produce(pLastEncryptedPart, pulLastEncryptedPartLen, |out| token.cipher_final(hSession, out, false))
        })
    }
}

cryptoki_fn! {
    /// Starts a decryption.
    fn C_DecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) {
        let token = token()?;
        token.cipher_init(hSession, mechanism(pMechanism)?, hKey, true)
    }
}

cryptoki_fn! {
    /// Decrypts in one call.
    fn C_Decrypt(hSession: CK_SESSION_HANDLE, pEncryptedData: CK_BYTE_PTR, ulEncryptedDataLen: CK_ULONG, pData: CK_BYTE_PTR, pulDataLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DECRYPT, || {
            let data = input(pEncryptedData, ulEncryptedDataLen)?;
            produce(pData, pulDataLen, |out| token.cipher(hSession, data, out, true))
        })
    }
}

cryptoki_fn! {
    /// Decrypts one more part.
    fn C_DecryptUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DECRYPT, || {
            let part = input(pEncryptedPart, ulEncryptedPartLen)?;
            produce(pPart, pulPartLen, |out| token.cipher_update(hSession, part, out, true))
        })
    }
}

cryptoki_fn! {
    /// Finishes a multi-part decryption.
    fn C_DecryptFinal(hSession: CK_SESSION_HANDLE, pLastPart: CK_BYTE_PTR, pulLastPartLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DECRYPT, || {
            produce(pLastPart, pulLastPartLen, |out| token.cipher_final(hSession, out, true))
        })
    }
}

cryptoki_fn! {
    /// Wraps a secret key.
    fn C_WrapKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        hWrappingKey: CK_OBJECT_HANDLE,
        hKey: CK_OBJECT_HANDLE,
        pWrappedKey: CK_BYTE_PTR,
        pulWrappedKeyLen: CK_ULONG_PTR,
    ) {
        let token = token()?;
        let m = mechanism(pMechanism)?;
        produce(pWrappedKey, pulWrappedKeyLen, |out| token.wrap_key(hSession, m, hWrappingKey, hKey, out))
    }
}

cryptoki_fn! {
    /// Unwraps a secret key into a new object.
    fn C_UnwrapKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        hUnwrappingKey: CK_OBJECT_HANDLE,
        pWrappedKey: CK_BYTE_PTR,
        ulWrappedKeyLen: CK_ULONG,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulAttributeCount: CK_ULONG,
        phKey: CK_OBJECT_HANDLE_PTR,
    ) {
        let token = token()?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let wrapped = input(pWrappedKey, ulWrappedKeyLen)?;
        let handle = token.unwrap_key(hSession, mechanism(pMechanism)?, hUnwrappingKey, wrapped, &template(pTemplate, ulAttributeCount)?)?;
        output(phKey, handle)
    }
}
