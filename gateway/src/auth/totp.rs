//! The second factor: time-based one-time passwords (TOTP, RFC 6238, on HOTP, RFC 4226)
//! and recovery codes.
//!
//! Codes are what authenticator apps make by default: HMAC-SHA-1, 6 digits, a 30-second
//! step. A code of the step before or after the current one is accepted too (a phone's
//! clock a little off, a code typed as it changed), and the step a code was accepted for
//! is kept so that no code of that step or an earlier one is accepted again (RFC 6238
//! §5.2). Secrets are 160 random bits (RFC 4226 §4 recommends it), shown in base32 (RFC
//! 4648) for typing and in an `otpauth://` URI, the format authenticator apps read from
//! a QR code.
//!
//! Recovery codes stand in for the authenticator once each. They are 10 random
//! characters from an alphabet without look-alikes (about 58 bits) and stored as their
//! SHA-256: unlike passwords, nobody chooses them, so no dictionary shortens a search of
//! 2^58, and a fast hash lets a login find the code by its hash instead of running
//! argon2id against each of ten (ten times 19 MiB per guess).

use qrcode::QrCode;
use qrcode::render::svg;
use rand::Rng;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds of a step.
pub const STEP_SECONDS: u64 = 30;
/// Steps before and after the current one whose codes are accepted too.
pub const SKEW_STEPS: u8 = 1;
/// The name authenticator apps show beside the account.
pub const ISSUER: &str = "duikou";
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A new random secret of 160 bits, in base32 (RFC 4648, no padding): what is stored
/// and what a person types into an authenticator.
pub fn new_secret() -> String {
    let mut bytes = [0_u8; 20];
    OsRng.fill_bytes(&mut bytes);
    base32_of(&bytes)
}

fn base32_of(bytes: &[u8]) -> String {
    match totp_rs::Secret::Raw(bytes.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(text) => text,
        totp_rs::Secret::Raw(_) => unreachable!("to_encoded always encodes"),
    }
}

/// The generator of `account`'s codes with `secret` (base32); `None` for a secret that
/// is not base32 of at least 128 bits.
fn generator(secret: &str, account: &str) -> Option<TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .ok()?;
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW_STEPS,
        STEP_SECONDS,
        bytes,
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .ok()
}

/// The `otpauth://totp/…` URI of `account`'s secret (the Key Uri Format authenticator
/// apps read). The algorithm, digits and period are stated although they are the
/// defaults, so that every app reads the same parameters.
pub fn otpauth_uri(secret: &str, account: &str) -> anyhow::Result<String> {
    let totp = generator(secret, account).ok_or_else(|| anyhow::anyhow!("a bad TOTP secret"))?;
    Ok(format!(
        "{}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        totp.get_url()
    ))
}

/// `uri` as a QR code, an SVG document.
pub fn qr_svg(uri: &str) -> anyhow::Result<String> {
    let code = QrCode::new(uri.as_bytes())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The step whose code `code` is, among the current one at `unix_seconds` and those
/// within [`SKEW_STEPS`]; `None` when it is none of them. Spaces in the code are
/// ignored (apps show "123 456").
pub fn matching_step(secret: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = generator(secret, "")?;
    let now = unix_seconds / STEP_SECONDS;
    let skew = u64::from(SKEW_STEPS);
    let mut found = None;
    // Every candidate is compared, so the time taken does not tell which one matched.
    for step in now.saturating_sub(skew)..=now + skew {
        let expected = totp.generate(step * STEP_SECONDS);
        if constant_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fresh recovery codes, as shown to the person: `xxxxx-xxxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyz";
    let mut rng = OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: String = (0..10)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// Whether `input` has the shape of a recovery code (rather than a 6-digit code).
pub fn looks_like_recovery_code(input: &str) -> bool {
    normalized_recovery_code(input).len() == 10
}

/// A recovery code as typed, without spaces or dashes, in lower case.
fn normalized_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored of a recovery code: the SHA-256 (hex) of its normalized form.
pub fn recovery_code_hash(input: &str) -> String {
    hex::encode(Sha256::digest(normalized_recovery_code(input).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret ("12345678901234567890") and its vectors,
    /// cut to six digits.
    #[test]
    fn codes_are_those_of_rfc_6238() {
        let secret = base32_of(b"12345678901234567890");
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        for (time, code) in [
            (59_u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                matching_step(&secret, code, time),
                Some(time / 30),
                "{time}"
            );
        }
        // A step either side is accepted, two are not.
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 60), None);
        assert_eq!(matching_step(&secret, "287 082", 59), Some(1));
        for bad in ["", "28708", "2870821", "28708a", "+87082"] {
            assert_eq!(matching_step(&secret, bad, 59), None, "{bad}");
        }
        assert_eq!(matching_step("not base32!", "287082", 59), None);
    }

    #[test]
    fn the_uri_names_the_account_issuer_and_parameters() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        assert_ne!(secret, new_secret());
        let uri = otpauth_uri(&secret, "admin").unwrap();
        assert!(uri.starts_with("otpauth://totp/duikou:admin?"), "{uri}");
        for part in [
            format!("secret={secret}"),
            "issuer=duikou".into(),
            "digits=6".into(),
            "period=30".into(),
            "algorithm=SHA1".into(),
        ] {
            assert!(uri.contains(&part), "{uri} lacks {part}");
        }
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
    }

    #[test]
    fn recovery_codes_are_random_and_hashed_as_typed_loosely() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && looks_like_recovery_code(c))
        );
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(recovery_code_hash(&typed), recovery_code_hash(code));
        assert!(!looks_like_recovery_code("123456"));
    }
}
