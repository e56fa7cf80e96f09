#![no_main]
//! Arbitrary SCRAM server-first and server-final messages (split at the first 0xff). With a
//! leading 'r' the server-first message starts with the client's real nonce, so the fuzzer
//! gets past the nonce check into the salt, iteration count and the final verifier.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::session::Session;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut s) = Session::new("u", Some("pencil"), &[("user", "u")]) else {
        return;
    };
    s.clear_output();
    if s.try_message(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
        .is_err()
    {
        return;
    }
    // The client-first message ends with "r=<nonce>".
    let out = s.output().to_vec();
    let nonce = out
        .windows(2)
        .position(|w| w == b"r=")
        .map(|i| out[i + 2..].to_vec())
        .unwrap_or_default();
    let (first, last) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut server_first = Vec::new();
    if let Some(rest) = first.strip_prefix(b"r") {
        server_first.extend_from_slice(b"r=");
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(rest);
    } else {
        server_first.extend_from_slice(first);
    }
    let mut continue_body = 11u32.to_be_bytes().to_vec();
    continue_body.extend_from_slice(&server_first);
    if s.try_message(&msg(b'R', &continue_body)).is_err() {
        return;
    }
    let mut final_body = 12u32.to_be_bytes().to_vec();
    final_body.extend_from_slice(last);
    let _ = s.try_message(&msg(b'R', &final_body));
});
