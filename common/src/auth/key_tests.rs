//! Key formats checked against a key made by OpenSSL, and round trips of generated keys.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone, Utc};

use super::*;

fn application_key() -> &'static ApplicationKey {
    static KEY: OnceLock<ApplicationKey> = OnceLock::new();
    KEY.get_or_init(|| ApplicationKey::generate(1024).unwrap())
}

/// A 1024-bit key made by OpenSSL (`openssl genrsa -traditional 1024`), its PKCS#8 and public
/// forms (`openssl pkey`), and its components (`openssl rsa -text`). Its DP is one byte short
/// of half the modulus, so the .NET form needs the zero padding .NET's importer insists on.
const OPENSSL_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIICWwIBAAKBgQC6cms7z6/HXIWEvu3mmyNKCpiXo7ScbxxduWI0Z7QivhC/gsuh
H8DG52pVfUk76KOiovc4tLMgvWg62C8wKsrk12B8hvoZYroyQcZ2xMET7ihZgC8+
E3H7lK1cs/vVgsq/x/+0NABUgWOPleN/M4ynOCkjNWn1ppW8g1ORBmoyPQIDAQAB
AoGBAJg8pOKJinW2Ti891vLc6cujK0VmHis9bmP44v73Tlav6uz012AQlU/T1TdI
vWt1YWeCuWpL4ZdyEJE7xAwIZPFhGHw/Z6DK2H77Pw1Ox9Fn9eC1giQYfbeXE7h0
RwG6NSkoA9IENSuUmv6xVXhiVnS/5v8n9JEyYZea1hI5wgwBAkEA4U3699BNLRZc
Xot0lPkwyhFblgmSLghJ1jwBfDozCMZ+0NRfMakuhchskiGxDEyvGJ0vJP1PbHg2
gpllBu44oQJBANPZMAp02QTMjEXnksmveA680gAtlgfFswWwZGctfn7OUA7fvE34
KKdDBPNbV+7EKhNliHLrDjdsRvx9fKMwyB0CPxwpozVW1E7OfL1UsT3t6CtaABjB
GYSnhJNC7OyaWca/CRsRcNTEUQxoASpDC959t2VcQIhfIY5teGLaycYUAQJAL455
8l74uNMSSj8J/KyfTu+kVNXm8Ce5YHWQlHjqBJ1b63reUsJ6ndG1ssu2mar/pwsL
7oBF2Ls91EB3UksJIQJAK9MAfdozai5phKhn7Cpt5y6v4UH075VTsF29eSVCkekd
mXvhn6poCZLjJqdGncrl72vZJYQoTlSavqY6gW5Dhg==
-----END RSA PRIVATE KEY-----
";

const OPENSSL_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBALpyazvPr8dchYS+
7eabI0oKmJejtJxvHF25YjRntCK+EL+Cy6EfwMbnalV9STvoo6Ki9zi0syC9aDrY
LzAqyuTXYHyG+hliujJBxnbEwRPuKFmALz4TcfuUrVyz+9WCyr/H/7Q0AFSBY4+V
438zjKc4KSM1afWmlbyDU5EGajI9AgMBAAECgYEAmDyk4omKdbZOLz3W8tzpy6Mr
RWYeKz1uY/ji/vdOVq/q7PTXYBCVT9PVN0i9a3VhZ4K5akvhl3IQkTvEDAhk8WEY
fD9noMrYfvs/DU7H0Wf14LWCJBh9t5cTuHRHAbo1KSgD0gQ1K5Sa/rFVeGJWdL/m
/yf0kTJhl5rWEjnCDAECQQDhTfr30E0tFlxei3SU+TDKEVuWCZIuCEnWPAF8OjMI
xn7Q1F8xqS6FyGySIbEMTK8YnS8k/U9seDaCmWUG7jihAkEA09kwCnTZBMyMReeS
ya94DrzSAC2WB8WzBbBkZy1+fs5QDt+8Tfgop0ME81tX7sQqE2WIcusON2xG/H18
ozDIHQI/HCmjNVbUTs58vVSxPe3oK1oAGMEZhKeEk0Ls7JpZxr8JGxFw1MRRDGgB
KkML3n23ZVxAiF8hjm14YtrJxhQBAkAvjnnyXvi40xJKPwn8rJ9O76RU1ebwJ7lg
dZCUeOoEnVvret5Swnqd0bWyy7aZqv+nCwvugEXYuz3UQHdSSwkhAkAr0wB92jNq
LmmEqGfsKm3nLq/hQfTvlVOwXb15JUKR6R2Ze+GfqmgJkuMmp0adyuXva9klhChO
VJq+pjqBbkOG
-----END PRIVATE KEY-----
";

const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC6cms7z6/HXIWEvu3mmyNKCpiX
o7ScbxxduWI0Z7QivhC/gsuhH8DG52pVfUk76KOiovc4tLMgvWg62C8wKsrk12B8
hvoZYroyQcZ2xMET7ihZgC8+E3H7lK1cs/vVgsq/x/+0NABUgWOPleN/M4ynOCkj
NWn1ppW8g1ORBmoyPQIDAQAB
-----END PUBLIC KEY-----
";

/// `(member, hex value)` in .NET's order.
const OPENSSL_COMPONENTS: [(&str, &str); 8] = [
    (
        "Modulus",
        "ba726b3bcfafc75c8584beede69b234a0a9897a3b49c6f1c5db9623467b422be10bf82cba11fc0c6e76a557d493be8a3a2a2f738b4b320bd683ad82f302acae4d7607c86fa1962ba3241c676c4c113ee2859802f3e1371fb94ad5cb3fbd582cabfc7ffb434005481638f95e37f338ca73829233569f5a695bc835391066a323d",
    ),
    ("Exponent", "010001"),
    (
        "P",
        "e14dfaf7d04d2d165c5e8b7494f930ca115b9609922e0849d63c017c3a3308c67ed0d45f31a92e85c86c9221b10c4caf189d2f24fd4f6c783682996506ee38a1",
    ),
    (
        "Q",
        "d3d9300a74d904cc8c45e792c9af780ebcd2002d9607c5b305b064672d7e7ece500edfbc4df828a74304f35b57eec42a13658872eb0e376c46fc7d7ca330c81d",
    ),
    (
        "DP",
        "1c29a33556d44ece7cbd54b13dede82b5a0018c11984a7849342ecec9a59c6bf091b1170d4c4510c68012a430bde7db7655c40885f218e6d7862dac9c61401",
    ),
    (
        "DQ",
        "2f8e79f25ef8b8d3124a3f09fcac9f4eefa454d5e6f027b96075909478ea049d5beb7ade52c27a9dd1b5b2cbb699aaffa70b0bee8045d8bb3dd44077524b0921",
    ),
    (
        "InverseQ",
        "2bd3007dda336a2e6984a867ec2a6de72eafe141f4ef9553b05dbd79254291e91d997be19faa680992e326a7469dcae5ef6bd92584284e549abea63a816e4386",
    ),
    (
        "D",
        "983ca4e2898a75b64e2f3dd6f2dce9cba32b45661e2b3d6e63f8e2fef74e56afeaecf4d76010954fd3d53748bd6b75616782b96a4be1977210913bc40c0864f161187c3f67a0cad87efb3f0d4ec7d167f5e0b58224187db79713b8744701ba35292803d204352b949afeb15578625674bfe6ff27f4913261979ad61239c20c01",
    ),
];

/// `openssl dgst -sha256 -sign` of `BDB65A558F193A8DD88E50E7416C0D86.202109161125` with that key.
const OPENSSL_SIGNATURE: &str = "s87NJdqlrznyr8VTIQ/WrU/YAj7lqAN0U7RBN5o5IHDzLr6/sugAmPyrn1tWOUWaeK554FTl8eRipoVogT5Dx3ekxb+MdIZbPZJx59C27kGUg4fnGq21xYinGsHkwpXZ+HpwVtQw3AX3u/T9z6g4txG4YycSFYaiMjTtI97+zy0=";

/// The key as .NET's `RSA.ToXmlString` writes it, built by hand from the components: every
/// member big-endian, Modulus and D as long as the modulus (128 bytes), the rest half (64).
fn dotnet_xml(members: &[&str]) -> String {
    let mut xml = String::from("<RSAKeyValue>");
    for (name, hex_value) in OPENSSL_COMPONENTS {
        if !members.contains(&name) {
            continue;
        }
        let mut bytes = hex::decode(hex_value).unwrap();
        let width = match name {
            "Modulus" | "D" => 128,
            "Exponent" => bytes.len(),
            _ => 64,
        };
        while bytes.len() < width {
            bytes.insert(0, 0);
        }
        xml.push_str(&format!("<{name}>{}</{name}>", STANDARD.encode(&bytes)));
    }
    xml.push_str("</RSAKeyValue>");
    xml
}

#[test]
fn dotnet_rsa_xml_and_pem_convert_both_ways() {
    let all = ["Modulus", "Exponent", "P", "Q", "DP", "DQ", "InverseQ", "D"];
    let xml = dotnet_xml(&all);
    assert!(xml.contains("<DP>AB"), "DP is zero-padded: {xml}");

    for pem in [OPENSSL_PKCS1, OPENSSL_PKCS8] {
        let key = ApplicationKey::from_text(pem).unwrap();
        assert_eq!(key.bits(), 1024);
        assert_eq!(key.to_rsa_xml(), xml);
        assert_eq!(key.to_pem(), OPENSSL_PKCS8);
        assert_eq!(key.public_key().to_pem(), OPENSSL_PUBLIC);
        assert_eq!(
            key.public_key().to_rsa_xml(),
            dotnet_xml(&["Modulus", "Exponent"])
        );
    }
    let from_xml = ApplicationKey::from_text(&xml).unwrap();
    assert_eq!(from_xml.to_pem(), OPENSSL_PKCS8);
    // Only Modulus, Exponent and D: the primes are recovered.
    let minimal = ApplicationKey::from_text(&dotnet_xml(&["Modulus", "Exponent", "D"])).unwrap();
    assert_eq!(minimal.to_rsa_xml(), xml);

    // Signing is deterministic (PKCS#1 v1.5), so our answer equals OpenSSL's signature.
    let at = Utc.with_ymd_and_hms(2021, 9, 16, 11, 25, 30).unwrap();
    let answer = from_xml.sign_answer("BDB65A558F193A8DD88E50E7416C0D86", at);
    assert_eq!(
        answer,
        format!("BDB65A558F193A8DD88E50E7416C0D86.202109161125.{OPENSSL_SIGNATURE}")
    );

    // The public key reads from each form, including a full private RSA-XML document.
    let public = ApplicationPublicKey::from_text(OPENSSL_PUBLIC).unwrap();
    for text in [
        xml.clone(),
        dotnet_xml(&["Modulus", "Exponent"]),
        OPENSSL_PKCS1.to_owned(),
        public.to_pem(),
    ] {
        let other = ApplicationPublicKey::from_text(&text).unwrap();
        assert!(other == public, "{text}");
        assert!(
            other
                .verify_answer(&answer, "BDB65A558F193A8DD88E50E7416C0D86", at)
                .is_ok()
        );
    }
}

#[test]
fn generated_keys_round_trip_and_bad_keys_are_refused() {
    let key = application_key();
    for text in [
        key.to_rsa_xml(),
        key.to_pem(),
        format!("\u{feff}{}\r\n", key.to_rsa_xml()),
    ] {
        let copy = ApplicationKey::from_text(&text).unwrap();
        assert_eq!(copy.public_key(), key.public_key());
        assert_eq!(copy.to_rsa_xml(), key.to_rsa_xml());
        let answer = copy.sign_answer("0123456789ABCDEF0123456789ABCDEF", Utc::now());
        assert!(
            key.public_key()
                .verify_answer(&answer, "0123456789ABCDEF0123456789ABCDEF", Utc::now())
                .is_ok()
        );
    }
    for (text, expected) in [
        (OPENSSL_PUBLIC, "no private key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----",
            "encrypted",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----",
            "PKCS#1",
        ),
        ("ssh-rsa AAAA", "neither"),
        (
            "<RSAKeyValue><Modulus>AQAB</Modulus></RSAKeyValue>",
            "<Exponent>",
        ),
    ] {
        let err = ApplicationKey::from_text(text).unwrap_err();
        assert!(err.to_string().contains(expected), "{text}: {err}");
    }
    // Components that do not form a key.
    let mut broken = dotnet_xml(&["Modulus", "Exponent", "P", "Q", "D"]);
    broken = broken.replacen("<D>", "<D>AQ", 1);
    assert!(ApplicationKey::from_text(&broken).is_err());
    assert!(ApplicationKey::generate(512).is_err());
    let err = ApplicationKey::load(std::path::Path::new("/nonexistent/app.pem")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/app.pem"), "{err}");
}
