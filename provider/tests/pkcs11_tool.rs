//! OpenSC's `pkcs11-tool` drives the built module: -I, -L, --init-token, --init-pin, --login,
//! --change-pin as the SO. Needs `pkcs11-tool` on PATH (Debian package `opensc`; the
//! project's `scripts/install-deps` installs it).

mod common;
use common::*;
use std::process::Command;

/// Runs pkcs11-tool against the module; returns (success, stdout + stderr).
fn tool(args: &[&str]) -> (bool, String) {
    let module = module_path();
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args(args)
        .output()
        .expect("pkcs11-tool is not installed: run scripts/install-deps (Debian package opensc)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(args: &[&str]) -> String {
    let (success, text) = tool(args);
    assert!(success, "pkcs11-tool {args:?} failed:\n{text}");
    text
}

#[test]
fn pkcs11_tool_token_lifecycle() {
    isolated("pkcs11_tool_token_lifecycle", "", || {
        let info = ok(&["-I"]);
        assert!(info.contains("Cryptoki version 3.0"), "{info}");
        assert!(info.contains("Manufacturer     Key4C Emulator"), "{info}");

        let slots = ok(&["-L"]);
        assert!(slots.contains("Slot 0 (0x0): Key4C V3 slot"), "{slots}");
        assert!(slots.contains("token state:   uninitialized"), "{slots}");

        let so = "So-Pin.2024x";
        let user = "Us3r#Pin.9k";
        // The policy is enforced on a PIN set through pkcs11-tool too.
        let (success, text) = tool(&["--init-token", "--label", "ci", "--so-pin", "weakpin12"]);
        // OpenSC has no name for the 3.0 code CKR_PIN_TOO_WEAK (0x1b8).
        assert!(!success && text.contains("(0x1b8)"), "{text}");
        ok(&["--init-token", "--label", "ci token", "--so-pin", so]);
        ok(&["--init-pin", "--so-pin", so, "--pin", user]);
        let slots = ok(&["-L"]);
        assert!(slots.contains("token label        : ci token"), "{slots}");
        assert!(slots.contains("token model        : Key4C V3"), "{slots}");
        assert!(
            slots.contains(
                "token flags        : login required, rng, token initialized, PIN initialized"
            ),
            "{slots}"
        );
        assert!(slots.contains("pin min/max        : 9/255"), "{slots}");

        // A User login (then an operation that needs none: random bytes).
        ok(&["--login", "--pin", user, "--generate-random", "16"]);
        let (success, text) = tool(&["--login", "--pin", "Wr0ng-Pin.x", "--generate-random", "16"]);
        assert!(!success && text.contains("CKR_PIN_INCORRECT"), "{text}");
        let slots = ok(&["-L"]);
        assert!(slots.contains("user PIN count low"), "{slots}");
        ok(&["--login", "--pin", user, "--generate-random", "16"]);

        // The User cannot change the User PIN on a Key4C V3; the SO changes the SO PIN.
        let (success, text) = tool(&["--change-pin", "--pin", user, "--new-pin", "Key4C-Pin.9x"]);
        assert!(
            !success && text.contains("CKR_USER_NOT_LOGGED_IN"),
            "{text}"
        );
        ok(&[
            "--change-pin",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            so,
            "--new-pin",
            "Key4C-Pin.9x",
        ]);
        let (success, text) = tool(&["--init-pin", "--so-pin", so, "--pin", "Ab1!cD2@e"]);
        assert!(!success && text.contains("CKR_PIN_INCORRECT"), "{text}");
        ok(&[
            "--init-pin",
            "--so-pin",
            "Key4C-Pin.9x",
            "--pin",
            "Ab1!cD2@e",
        ]);
        ok(&["--login", "--pin", "Ab1!cD2@e", "--generate-random", "16"]);
    });
}
