//! Test PKI made with rcgen: one CA, a server certificate for `localhost` / `127.0.0.1`
//! (serverAuth), a client certificate (clientAuth) for mTLS, and more client certificates on
//! demand (the test backend hands one out at every registration). Every [`Certs::new`] is a
//! fresh CA, so two of them give a "wrong CA" for verification tests.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use std::path::{Path, PathBuf};

pub struct Certs {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

/// Where [`Certs::write`] put the PEM files.
pub struct CertFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certs {
    pub fn new() -> Certs {
        // unwrap: rcgen only fails on invalid parameters, and these are fixed.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pganalytics test backend CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut certs = Certs {
            ca_pem: ca.pem(),
            server_cert_pem: String::new(),
            server_key_pem: String::new(),
            client_cert_pem: String::new(),
            client_key_pem: String::new(),
            ca_params,
            ca_key,
        };
        let (cert, key) = certs.issue(
            "localhost",
            &["localhost"],
            true,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        certs.server_cert_pem = cert;
        certs.server_key_pem = key;
        let (cert, key) = certs.issue_client("test-collector");
        certs.client_cert_pem = cert;
        certs.client_key_pem = key;
        certs
    }

    /// A client certificate (clientAuth EKU) signed by this CA: (cert pem, PKCS#8 key pem).
    pub fn issue_client(&self, common_name: &str) -> (String, String) {
        self.issue(common_name, &[], false, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        common_name: &str,
        dns: &[&str],
        loopback_ip: bool,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if loopback_ip {
            params
                .subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes every PEM into `dir` (keys mode 0600).
    pub fn write(&self, dir: &Path) -> CertFiles {
        use std::os::unix::fs::PermissionsExt;
        let put = |name: &str, text: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        CertFiles {
            ca: put("ca.pem", &self.ca_pem, 0o644),
            server_cert: put("server.pem", &self.server_cert_pem, 0o644),
            server_key: put("server.key", &self.server_key_pem, 0o600),
            client_cert: put("client.pem", &self.client_cert_pem, 0o644),
            client_key: put("client.key", &self.client_key_pem, 0o600),
        }
    }
}
