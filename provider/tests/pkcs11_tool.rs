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

/// Runs openssl; returns (success, output).
fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn pkcs11_tool_keys_sign_verify_and_test() {
    isolated("pkcs11_tool_keys_sign_verify_and_test", "", || {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let user = "Us3r#Pin.9k";
        ok(&["--init-token", "--label", "ci", "--so-pin", "So-Pin.2024x"]);
        ok(&["--init-pin", "--so-pin", "So-Pin.2024x", "--pin", user]);
        let data = path("data");
        std::fs::write(&data, b"a JWT signing input, more or less").unwrap();
        let login = ["--login", "--pin", user];

        // (key type, id, pkcs11-tool mechanism, openssl dgst options)
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("EC:prime256v1", "01", "ECDSA-SHA256", &["-sha256"]),
            ("rsa:2048", "02", "SHA256-RSA-PKCS", &["-sha256"]),
            (
                "rsa:2048",
                "02",
                "SHA256-RSA-PKCS-PSS",
                &[
                    "-sha256",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:32",
                ],
            ),
            ("EC:edwards25519", "03", "EDDSA", &[]),
        ];
        for (key_type, id, mechanism, dgst) in cases {
            if *mechanism != "SHA256-RSA-PKCS-PSS" {
                let mut args = login.to_vec();
                args.extend([
                    "--keypairgen",
                    "--key-type",
                    key_type,
                    "--id",
                    id,
                    "--label",
                    id,
                ]);
                ok(&args);
            }
            let sig = path(&format!("{id}-{mechanism}.sig"));
            let mut args = login.to_vec();
            args.extend([
                "--sign", "--id", id, "-m", mechanism, "-i", &data, "-o", &sig,
            ]);
            if mechanism.starts_with("ECDSA") {
                // OpenSSL wants a DER ECDSA-Sig-Value.
                args.extend(["--signature-format", "openssl"]);
            }
            ok(&args);
            let mut args = login.to_vec();
            args.extend([
                "--verify",
                "--id",
                id,
                "-m",
                mechanism,
                "-i",
                &data,
                "--signature-file",
                &sig,
            ]);
            if mechanism.starts_with("ECDSA") {
                args.extend(["--signature-format", "openssl"]);
            }
            let text = ok(&args);
            assert!(text.contains("Signature is valid"), "{text}");

            let der = path(&format!("{id}.pub.der"));
            ok(&["--read-object", "--type", "pubkey", "--id", id, "-o", &der]);
            let pem = path(&format!("{id}.pub.pem"));
            // pkcs11-tool writes DER, or PEM for Edwards keys.
            let form = if std::fs::read(&der).unwrap().starts_with(b"-----BEGIN") {
                "PEM"
            } else {
                "DER"
            };
            let (converted, text) =
                openssl(&["pkey", "-pubin", "-inform", form, "-in", &der, "-out", &pem]);
            assert!(converted, "{text}");
            let (valid, text) = if *mechanism == "EDDSA" {
                openssl(&[
                    "pkeyutl", "-verify", "-pubin", "-inkey", &pem, "-rawin", "-in", &data,
                    "-sigfile", &sig,
                ])
            } else {
                let mut args = vec!["dgst"];
                args.extend(dgst.iter());
                args.extend(["-verify", &pem, "-signature", &sig, &data]);
                openssl(&args)
            };
            assert!(valid, "OpenSSL rejects the {mechanism} signature: {text}");
            // A flipped bit: OpenSSL and the token both refuse it.
            let mut bad = std::fs::read(&sig).unwrap();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            std::fs::write(&sig, &bad).unwrap();
            let mut args = login.to_vec();
            args.extend([
                "--verify",
                "--id",
                id,
                "-m",
                mechanism,
                "-i",
                &data,
                "--signature-file",
                &sig,
            ]);
            if mechanism.starts_with("ECDSA") {
                args.extend(["--signature-format", "openssl"]);
            }
            let (_, text) = tool(&args);
            assert!(!text.contains("Signature is valid"), "{text}");
        }

        // AES: generate, encrypt, decrypt.
        let mut args = login.to_vec();
        args.extend([
            "--keygen",
            "--key-type",
            "AES:32",
            "--id",
            "04",
            "--label",
            "aes",
        ]);
        ok(&args);
        let iv = "000102030405060708090a0b0c0d0e0f";
        let enc = path("data.enc");
        let mut args = login.to_vec();
        args.extend([
            "--encrypt",
            "--id",
            "04",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "-i",
            &data,
            "-o",
            &enc,
        ]);
        ok(&args);
        let dec = path("data.dec");
        let mut args = login.to_vec();
        args.extend([
            "--decrypt",
            "--id",
            "04",
            "-m",
            "AES-CBC-PAD",
            "--iv",
            iv,
            "-i",
            &enc,
            "-o",
            &dec,
        ]);
        ok(&args);
        assert_eq!(std::fs::read(&dec).unwrap(), std::fs::read(&data).unwrap());

        // A certificate written by pkcs11-tool is stored and listed.
        let key = path("cert.key");
        let cert = path("cert.der");
        let (made, text) = openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=pkcs11-tool import",
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            &cert,
        ]);
        assert!(made, "{text}");
        let mut args = login.to_vec();
        args.extend([
            "--write-object",
            &cert,
            "--type",
            "cert",
            "--id",
            "05",
            "--label",
            "imported",
        ]);
        ok(&args);
        let objects = ok(&["--list-objects", "--type", "cert"]);
        assert!(
            objects.contains("Certificate Object; type = X.509 cert"),
            "{objects}"
        );
        assert!(objects.contains("label:      imported"), "{objects}");
        assert!(objects.contains("CN=pkcs11-tool import"), "{objects}");
        let back = path("cert.back");
        ok(&["--read-object", "--type", "cert", "--id", "05", "-o", &back]);
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&cert).unwrap());

        // OpenSC's own self-test over every key on the token.
        let mut args = login.to_vec();
        args.push("--test");
        let text = ok(&args);
        assert!(text.contains("No errors"), "{text}");
        assert!(text.contains("SHA256-RSA-PKCS: OK"), "{text}");
    });
}
