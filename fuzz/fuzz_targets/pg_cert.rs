#![no_main]
//! The certificate reader of SCRAM-SHA-256-PLUS (`tls-server-end-point`): arbitrary bytes
//! are an error or a known algorithm; a certificate outline around arbitrary bytes, signed
//! with a known algorithm, always maps to that algorithm's hash (RFC 5929).
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::cert::{
    EndPointHash, SIGNATURE_OIDS, dotted, end_point_data, end_point_hash, outline, signature_oid,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = end_point_hash(data) {
        let oid = signature_oid(data).unwrap();
        assert!(SIGNATURE_OIDS.iter().any(|&(_, o, x)| o == oid && x == h));
    }
    let _ = dotted(data);
    let Some((&pick, tbs)) = data.split_first() else {
        return;
    };
    let (_, oid, hash) = SIGNATURE_OIDS[usize::from(pick) % SIGNATURE_OIDS.len()];
    let cert = outline(tbs, oid);
    assert_eq!(end_point_hash(&cert), Ok(hash));
    let len = match hash {
        EndPointHash::Sha256 => 32,
        EndPointHash::Sha384 => 48,
        EndPointHash::Sha512 => 64,
    };
    assert_eq!(end_point_data(&cert).unwrap().len(), len);
});
