//! Slot and token management (PKCS#11 3.0 section 5.5).

use pkcs11_sys::*;

use super::{input, output, output_list, token};
use crate::token::Error;

cryptoki_fn! {
    /// The module has one slot; its token is absent when the configuration names another
    /// service.
    fn C_GetSlotList(tokenPresent: CK_BBOOL, pSlotList: CK_SLOT_ID_PTR, pulCount: CK_ULONG_PTR) {
        let token = token()?;
        if tokenPresent != 0 && !token.token_present() {
            return output_list(pSlotList, pulCount, &[]);
        }
        output_list(pSlotList, pulCount, &[token.slot_id()])
    }
}

cryptoki_fn! {
    /// CK_SLOT_INFO.
    fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) {
        let info = token()?.slot_info(slotID)?;
        output(pInfo, info)
    }
}

cryptoki_fn! {
    /// CK_TOKEN_INFO.
    fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) {
        let info = token()?.token_info(slotID)?;
        output(pInfo, info)
    }
}

cryptoki_fn! {
    /// The mechanisms the token implements.
    fn C_GetMechanismList(slotID: CK_SLOT_ID, pMechanismList: CK_MECHANISM_TYPE_PTR, pulCount: CK_ULONG_PTR) {
        let list = token()?.mechanism_list(slotID)?;
        output_list(pMechanismList, pulCount, &list)
    }
}

cryptoki_fn! {
    /// One mechanism's key sizes and flags.
    fn C_GetMechanismInfo(slotID: CK_SLOT_ID, type_: CK_MECHANISM_TYPE, pInfo: CK_MECHANISM_INFO_PTR) {
        let token = token()?;
        if pInfo.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let info = token.mechanism_info(slotID, type_)?;
        output(pInfo, info)
    }
}

cryptoki_fn! {
    /// Initialises (or re-initialises, with the SO PIN) the token.
    fn C_InitToken(slotID: CK_SLOT_ID, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG, pLabel: CK_UTF8CHAR_PTR) {
        let token = token()?;
        // The token has no protected authentication path: the PIN must be given.
        if pPin.is_null() || pLabel.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let pin = input(pPin, ulPinLen)?;
        let label = (pLabel as *const [u8; 32]).read_unaligned();
        token.init_token(slotID, pin, &label)
    }
}

cryptoki_fn! {
    /// The SO sets, resets or unlocks the User PIN.
    fn C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG) {
        let token = token()?;
        if pPin.is_null() {
            return Err(Error::ArgumentsBad);
        }
        token.init_pin(hSession, input(pPin, ulPinLen)?)
    }
}

cryptoki_fn! {
    /// Changes the SO PIN (or, with `allow_user_set_pin`, the User PIN).
    fn C_SetPIN(
        hSession: CK_SESSION_HANDLE,
        pOldPin: CK_UTF8CHAR_PTR,
        ulOldLen: CK_ULONG,
        pNewPin: CK_UTF8CHAR_PTR,
        ulNewLen: CK_ULONG,
    ) {
        let token = token()?;
        if pOldPin.is_null() || pNewPin.is_null() {
            return Err(Error::ArgumentsBad);
        }
        token.set_pin(hSession, input(pOldPin, ulOldLen)?, input(pNewPin, ulNewLen)?)
    }
}

cryptoki_fn! {
    /// The token is never inserted or removed, so no slot event ever happens.
    fn C_WaitForSlotEvent(flags: CK_FLAGS, pSlot: CK_SLOT_ID_PTR, pReserved: CK_VOID_PTR) {
        token()?;
        if pSlot.is_null() || !pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        if flags & CKF_DONT_BLOCK != 0 {
            Err(Error::NoEvent)
        } else {
            // Blocking forever on an event that cannot come would hang the caller.
            Err(Error::FunctionNotSupported)
        }
    }
}
