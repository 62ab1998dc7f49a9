//! A throw-away organisation PKI for tests that serve over TLS: a CA and a
//! server certificate it issued, written as the PEM files an administrator
//! would configure (`fullchain.pem`, `privkey.pem`) and deploy (`ca.pem`).
//! Shared by the broker's and the CLI's integration tests.
#![allow(
    clippy::unwrap_used,
    reason = "test helper: a failed setup should panic loudly"
)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// An organisation CA and a server certificate it issued for `host`.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes the CA and a certificate for `host` (chain included) into `dir`.
pub fn issue(dir: &Path, host: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Kluis test organisation CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("fullchain.pem"),
        key: dir.join("privkey.pem"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}
