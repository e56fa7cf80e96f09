//! The certificate reader for SCRAM-SHA-256-PLUS: `tls-server-end-point` channel binding
//! (RFC 5929 §4.1) is the hash of the server's DER certificate, with the hash function of the
//! certificate's signature algorithm, except that MD5 and SHA-1 become SHA-256. PostgreSQL's
//! server computes the same value (`be_tls_get_certificate_hash`), so an algorithm it cannot
//! map (RSASSA-PSS, Ed25519, SHA-224) is refused here as well.
//!
//! Pure: bytes in, a hash choice out. Only the outer structure is read
//! (`Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }`,
//! `AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, … }`), in DER.

/// The hash function of `tls-server-end-point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// Signature algorithm OIDs (content bytes) and the hash they select.
pub const SIGNATURE_OIDS: &[(&str, &[u8], EndPointHash)] = &[
    // 1.2.840.113549.1.1.{4,5,11,12,13}: RSA with MD5, SHA-1, SHA-256, SHA-384, SHA-512.
    (
        "md5WithRSAEncryption",
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        EndPointHash::Sha256,
    ),
    (
        "sha1WithRSAEncryption",
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        EndPointHash::Sha256,
    ),
    (
        "sha256WithRSAEncryption",
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        EndPointHash::Sha256,
    ),
    (
        "sha384WithRSAEncryption",
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        EndPointHash::Sha384,
    ),
    (
        "sha512WithRSAEncryption",
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        EndPointHash::Sha512,
    ),
    // 1.2.840.10045.4.1 and 1.2.840.10045.4.3.{2,3,4}: ECDSA with SHA-1, SHA-256/384/512.
    (
        "ecdsa-with-SHA1",
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],
        EndPointHash::Sha256,
    ),
    (
        "ecdsa-with-SHA256",
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        EndPointHash::Sha256,
    ),
    (
        "ecdsa-with-SHA384",
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        EndPointHash::Sha384,
    ),
    (
        "ecdsa-with-SHA512",
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        EndPointHash::Sha512,
    ),
    // 1.2.840.10040.4.3 (DSA with SHA-1), 2.16.840.1.101.3.4.3.2 (DSA with SHA-256).
    (
        "dsa-with-sha1",
        &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
        EndPointHash::Sha256,
    ),
    (
        "dsa-with-sha256",
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02],
        EndPointHash::Sha256,
    ),
];

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;

/// One DER element at the start of `input`: (tag, content, rest). Definite lengths only, at
/// most four length bytes, minimal form not required.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("truncated certificate")?;
    let (&first, rest) = rest.split_first().ok_or("truncated certificate")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(format!("unsupported DER length form 0x{first:02x}"));
        }
        let bytes = rest.get(..n).ok_or("truncated certificate")?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    let content = rest.get(..len).ok_or("truncated certificate")?;
    Ok((tag, content, &rest[len..]))
}

/// The `signatureAlgorithm` OID of a DER certificate (content bytes).
pub fn signature_oid(der: &[u8]) -> Result<&[u8], String> {
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return Err("the certificate is not a DER sequence".to_string());
    }
    let (tag, _tbs, rest) = element(cert)?;
    if tag != SEQUENCE {
        return Err("the certificate has no tbsCertificate sequence".to_string());
    }
    let (tag, algorithm, _) = element(rest)?;
    if tag != SEQUENCE {
        return Err("the certificate has no signatureAlgorithm sequence".to_string());
    }
    let (tag, oid, _) = element(algorithm)?;
    if tag != OID {
        return Err("the signatureAlgorithm has no object identifier".to_string());
    }
    Ok(oid)
}

/// The `tls-server-end-point` hash for a DER certificate, or why there is none.
pub fn end_point_hash(der: &[u8]) -> Result<EndPointHash, String> {
    let oid = signature_oid(der)?;
    SIGNATURE_OIDS
        .iter()
        .find(|(_, o, _)| *o == oid)
        .map(|&(_, _, h)| h)
        .ok_or_else(|| {
            format!(
                "the server certificate's signature algorithm (OID {}) has no tls-server-end-point hash",
                dotted(oid)
            )
        })
}

/// The `tls-server-end-point` channel-binding data for a DER certificate.
pub fn end_point_data(der: &[u8]) -> Result<Vec<u8>, String> {
    let algorithm = match end_point_hash(der)? {
        EndPointHash::Sha256 => &ring::digest::SHA256,
        EndPointHash::Sha384 => &ring::digest::SHA384,
        EndPointHash::Sha512 => &ring::digest::SHA512,
    };
    Ok(ring::digest::digest(algorithm, der).as_ref().to_vec())
}

/// An OID's content bytes in dotted form, for messages (`1.2.840.113549.1.1.10`).
pub fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first.to_string());
                parts.push((value - first * 40).to_string());
            } else {
                parts.push(value.to_string());
            }
            value = 0;
        } else if i + 1 == oid.len() {
            parts.push("…".to_string());
        }
        if parts.len() > 16 {
            parts.push("…".to_string());
            break;
        }
    }
    parts.join(".")
}

/// A DER element: tag, length (short or long form), content (for tests and the fuzz target).
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The outline of a certificate signed with `oid`: `tbs` as the tbsCertificate content.
pub fn outline(tbs: &[u8], oid: &[u8]) -> Vec<u8> {
    let mut body = der(SEQUENCE, tbs);
    let mut algorithm = der(OID, oid);
    algorithm.extend_from_slice(&[0x05, 0x00]);
    body.extend_from_slice(&der(SEQUENCE, &algorithm));
    body.extend_from_slice(&der(0x03, &[0x00, 0xaa, 0xbb]));
    der(SEQUENCE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_algorithm_maps_as_rfc_5929_says() {
        for &(name, oid, hash) in SIGNATURE_OIDS {
            for tbs in [&b""[..], &[0x42; 300][..], &[0x42; 70_000][..]] {
                let cert = outline(tbs, oid);
                assert_eq!(end_point_hash(&cert), Ok(hash), "{name}");
            }
        }
        let rsa256 = outline(b"x", SIGNATURE_OIDS[2].1);
        let data = end_point_data(&rsa256).unwrap();
        assert_eq!(
            data,
            ring::digest::digest(&ring::digest::SHA256, &rsa256).as_ref()
        );
        let sha512 = outline(b"x", SIGNATURE_OIDS[4].1);
        assert_eq!(end_point_data(&sha512).unwrap().len(), 64);
    }

    #[test]
    fn unknown_algorithms_are_named() {
        // RSASSA-PSS: PostgreSQL cannot bind it either.
        let pss = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        let e = end_point_hash(&outline(b"", &pss)).unwrap_err();
        assert!(e.contains("OID 1.2.840.113549.1.1.10"), "{e}");
        // Ed25519.
        let e = end_point_hash(&outline(b"", &[0x2b, 0x65, 0x70])).unwrap_err();
        assert!(e.contains("1.3.101.112"), "{e}");
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        let cert = outline(&[7; 200], SIGNATURE_OIDS[6].1);
        for len in 0..cert.len() {
            assert!(end_point_hash(&cert[..len]).is_err(), "prefix {len}");
        }
        assert!(end_point_hash(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(end_point_hash(&[0x31, 0x00]).is_err());
    }

    #[test]
    fn a_real_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // rcgen's default key is ECDSA P-256 with SHA-256.
        assert_eq!(end_point_hash(cert.der()), Ok(EndPointHash::Sha256));
    }
}
