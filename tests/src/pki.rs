//! Certificates for the TLS tests, made when a test runs so that no
//! private key is ever committed and no openssl command is needed.

/// PEM files for mutual TLS, made with rcgen when the test runs (no key is
/// ever committed): a CA, a server certificate for localhost and
/// 127.0.0.1, a client certificate from that CA, and a client certificate
/// from another CA that the server must not trust.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    pub stranger_cert: String,
    pub stranger_key: String,
}

pub fn make_pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    };
    let leaf =
        |issuer: &CertifiedIssuer<'_, KeyPair>, names: &[&str], usage: ExtendedKeyUsagePurpose| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, "peregrine-test");
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
    let trusted = ca("peregrine test CA");
    let stranger_ca = ca("some other CA");
    let (server_cert, server_key) = leaf(
        &trusted,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(&trusted, &[], ExtendedKeyUsagePurpose::ClientAuth);
    let (stranger_cert, stranger_key) =
        leaf(&stranger_ca, &[], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: trusted.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        stranger_cert,
        stranger_key,
    }
}
