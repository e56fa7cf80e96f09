//! The test backend (tests/support/backend.rs) checked with a minimal client, so that a failing
//! end-to-end push test points at the collector, not at the backend.

mod support;

use serde_json::json;
use std::io::Write;
use support::backend::{Backend, ConfigReply, Fault, Mode, Options, PUSH, REFRESH, REGISTER};
use support::client::Client;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(3));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn envelope(id: &str, batch: &str) -> Vec<u8> {
    json!({"collector_id": id, "hostname": "h", "timestamp": "2026-03-01T12:00:00Z",
           "batch_id": batch, "version": "0.1.0", "metrics_count": 1,
           "metrics": [{"type": "sysstat", "timestamp": "2026-03-01T12:00:00Z"}]})
    .to_string()
    .into_bytes()
}

fn client(b: &Backend) -> Client {
    Client::connect(&b.url, &b.certs.ca_pem, None).unwrap()
}

#[test]
fn register_push_refresh_config_and_faults() {
    let b = Backend::start(Options::default());
    let mut c = client(&b);
    let bad = c
        .request(
            "POST",
            REGISTER,
            &[
                ("X-Registration-Secret", "nope"),
                ("Content-Type", "application/json"),
            ],
            b"{}",
        )
        .unwrap();
    assert_eq!(bad.status, 401);
    assert!(bad.json()["message"].is_string());
    let body = br#"{"name":"n","hostname":"h","version":"0.1.0"}"#;
    let r = c
        .request(
            "POST",
            REGISTER,
            &[
                ("X-Registration-Secret", "registration-secret"),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    let id = v["collector_id"].as_str().unwrap().to_string();
    let token = v["token"].as_str().unwrap().to_string();
    assert!(
        v["certificate"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let claims = support::backend::verify(&b.key, &token).unwrap();
    assert_eq!(claims["collector_id"], id.as_str());
    let auth = format!("Bearer {token}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let batch = "0123456789abcdef0123456789abcdef";
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = c
        .request("POST", PUSH, &h[..2], &envelope(&id, batch))
        .unwrap();
    assert_eq!(r.status, 200, "plain JSON accepted");
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope("other", batch)))
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Collector ID mismatch");
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, "xyz")))
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(b.violations().len(), 1, "{:?}", b.violations());
    b.state().violations.clear();

    let r = c
        .request("POST", REFRESH, &[("Authorization", &auth)], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["token"].as_str().unwrap(), token);
    let r = c
        .request("POST", REFRESH, &[("Authorization", "Bearer a.b.c")], b"")
        .unwrap();
    assert_eq!(r.status, 401);

    let path = format!("/api/v1/config/{id}");
    let r = c
        .request("GET", &path, &[("Authorization", &auth)], b"")
        .unwrap();
    assert_eq!(r.status, 404);
    b.set_config(Some(ConfigReply::Document {
        version: 2,
        body: "[collector]\npush_interval = 0.5\n".into(),
    }));
    let r = c
        .request("GET", &path, &[("Authorization", &auth)], b"")
        .unwrap();
    assert_eq!((r.status, r.header("x-config-version")), (200, Some("2")));

    b.push_faults(1, Fault::TooMany(Some(3)));
    b.push_faults(1, Fault::Status(503));
    b.push_faults(1, Fault::BadRequest);
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!(r.status, 503);
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["details"].is_string());
    b.set_max_body(Some(10));
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!(r.status, 413);
    b.set_max_body(None);
    b.push_faults(1, Fault::Reset);
    assert!(
        c.request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
            .is_err()
    );
    assert!(b.batches().last().unwrap().reply_lost);
    let mut c = client(&b);
    b.push_faults(1, Fault::Garbage);
    assert!(
        c.request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
            .is_err()
    );
    let mut c = client(&b);
    b.push_faults(1, Fault::Redirect);
    let r = c
        .request("POST", PUSH, &h, &gzip(&envelope(&id, batch)))
        .unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(b.batches().len(), 3);
    assert!(b.violations().is_empty(), "{:?}", b.violations());
}

#[test]
fn shared_secret_tokens_and_mtls() {
    let b = Backend::start(Options {
        mode: Mode::Mtls,
        shared_key: Some(b"shared".to_vec()),
        ..Options::default()
    });
    let claims = support::backend::claims("c1", "h", std::time::Duration::from_secs(60));
    let token = support::backend::sign(b"shared", &claims);
    let mut c = Client::connect(
        &b.url,
        &b.certs.ca_pem,
        Some((&b.certs.client_cert_pem, &b.certs.client_key_pem)),
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let r = c
        .request(
            "POST",
            PUSH,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &envelope("c1", "0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    // Without a client certificate the handshake fails (seen at the first read in TLS 1.3).
    let mut c = Client::connect(&b.url, &b.certs.ca_pem, None).unwrap();
    assert!(c.request("GET", "/", &[], b"").is_err());
    assert!(support::backend::b64url_decode("a+b").is_err());
    assert_eq!(support::backend::b64url(b"hi?"), "aGk_");
}

#[test]
fn tls12_only_mode_refuses_a_tls13_client_and_outage_answers_everything() {
    let b = Backend::start(Options {
        mode: Mode::Tls12Only,
        ..Options::default()
    });
    let mut c = client(&b);
    assert!(c.request("GET", "/", &[], b"").is_err());
    assert!(
        b.wait(std::time::Duration::from_secs(2), |s| !s
            .tls_errors
            .is_empty()),
        "the server saw the failed handshake"
    );
    assert!(b.requests().is_empty());

    let b = Backend::start(Options {
        mode: Mode::Http,
        ..Options::default()
    });
    assert!(b.url.starts_with("http://127.0.0.1:"));
    b.set_outage(Some(Fault::Status(503)));
    let mut c = client(&b);
    let body = br#"{"name":"n","hostname":"h","version":"0.1.0"}"#;
    let r = c
        .request(
            "POST",
            REGISTER,
            &[
                ("X-Registration-Secret", "registration-secret"),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .unwrap();
    assert_eq!(r.status, 503);
    b.set_outage(None);
    let start = std::time::Instant::now();
    b.push_faults(1, Fault::Slow(std::time::Duration::from_millis(300)));
    let token = b.issue_token("c", "h");
    let auth = format!("Bearer {token}");
    let r = c
        .request("POST", PUSH, &[("Authorization", &auth)], b"{}")
        .unwrap();
    assert_eq!(r.status, 503);
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(b.pushes_between(start, std::time::Instant::now()), 1);
}
