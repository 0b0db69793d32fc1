//! Signing, verification and digests (PKCS#11 3.0 sections 5.10, 5.12, 5.13).

use pkcs11_sys::*;

use super::mechanism::mechanism;
use super::{in_operation, input, produce, token};
use crate::token::Error;

cryptoki_fn! {
    /// Starts a signature.
    fn C_SignInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) {
        let token = token()?;
        token.sign_init(hSession, mechanism(pMechanism)?, hKey, false)
    }
}

cryptoki_fn! {
    /// Signs in one call.
    fn C_Sign(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_SIGN, || {
            let data = input(pData, ulDataLen)?;
            produce(pSignature, pulSignatureLen, |out| token.sign(hSession, data, out))
        })
    }
}

cryptoki_fn! {
    /// Adds data to a multi-part signature.
    fn C_SignUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let token = token()?;
        in_operation(&token, hSession, CKF_SIGN, || {
            token.sign_update(hSession, input(pPart, ulPartLen)?, false)
        })
    }
}

cryptoki_fn! {
    /// Finishes a multi-part signature.
    fn C_SignFinal(hSession: CK_SESSION_HANDLE, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_SIGN, || {
            produce(pSignature, pulSignatureLen, |out| token.sign_final(hSession, out))
        })
    }
}

cryptoki_fn! {
    /// Starts a verification.
    fn C_VerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) {
        let token = token()?;
        token.sign_init(hSession, mechanism(pMechanism)?, hKey, true)
    }
}

cryptoki_fn! {
    /// Verifies in one call.
    fn C_Verify(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG) {
        let token = token()?;
        in_operation(&token, hSession, CKF_VERIFY, || {
            token.verify(hSession, input(pData, ulDataLen)?, input(pSignature, ulSignatureLen)?)
        })
    }
}

cryptoki_fn! {
    /// Adds data to a multi-part verification.
    fn C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let token = token()?;
        in_operation(&token, hSession, CKF_VERIFY, || {
            token.sign_update(hSession, input(pPart, ulPartLen)?, true)
        })
    }
}

cryptoki_fn! {
    /// Finishes a multi-part verification.
    fn C_VerifyFinal(hSession: CK_SESSION_HANDLE, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG) {
        let token = token()?;
        in_operation(&token, hSession, CKF_VERIFY, || {
            token.verify_final(hSession, input(pSignature, ulSignatureLen)?)
        })
    }
}

cryptoki_fn! {
    /// Starts a digest.
    fn C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR) {
        let token = token()?;
        token.digest_init(hSession, mechanism(pMechanism)?)
    }
}

cryptoki_fn! {
    /// Digests in one call.
    fn C_Digest(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pDigest: CK_BYTE_PTR, pulDigestLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DIGEST, || {
            let data = input(pData, ulDataLen)?;
            produce(pDigest, pulDigestLen, |out| token.digest(hSession, data, out))
        })
    }
}

cryptoki_fn! {
    /// Adds data to a multi-part digest.
    fn C_DigestUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DIGEST, || {
            token.digest_update(hSession, input(pPart, ulPartLen)?)
        })
    }
}

cryptoki_fn! {
    /// Adds a secret key's value to a digest.
    fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) {
        token()?.digest_key(hSession, hKey)
    }
}

cryptoki_fn! {
    /// Finishes a multi-part digest.
    fn C_DigestFinal(hSession: CK_SESSION_HANDLE, pDigest: CK_BYTE_PTR, pulDigestLen: CK_ULONG_PTR) {
        let token = token()?;
        in_operation(&token, hSession, CKF_DIGEST, || {
            produce(pDigest, pulDigestLen, |out| token.digest_final(hSession, out))
        })
    }
}

cryptoki_fn! {
    /// Generates a secret key.
    fn C_GenerateKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
        phKey: CK_OBJECT_HANDLE_PTR,
    ) {
        let token = token()?;
        if phKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let handle = token.generate_key(hSession, mechanism(pMechanism)?, &super::template(pTemplate, ulCount)?)?;
        super::output(phKey, handle)
    }
}

cryptoki_fn! {
    /// Generates a key pair.
    fn C_GenerateKeyPair(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
        ulPublicKeyAttributeCount: CK_ULONG,
        pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
        ulPrivateKeyAttributeCount: CK_ULONG,
        phPublicKey: CK_OBJECT_HANDLE_PTR,
        phPrivateKey: CK_OBJECT_HANDLE_PTR,
    ) {
        let token = token()?;
        if phPublicKey.is_null() || phPrivateKey.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let public = super::template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?;
        let private = super::template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?;
        let (p, q) = token.generate_key_pair(hSession, mechanism(pMechanism)?, &public, &private)?;
        super::output(phPublicKey, p)?;
        super::output(phPrivateKey, q)
    }
}
