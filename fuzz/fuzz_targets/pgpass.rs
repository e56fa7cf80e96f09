#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::collect::pg::pgpass::{Lookup, find};

fuzz_target!(|data: &[u8]| {
    for (host, unix) in [("localhost", false), ("/tmp", true), ("db:1", false)] {
        let who = Lookup {
            host,
            unix,
            port: 5432,
            database: "app",
            user: "u*",
        };
        let _ = find(data, &who);
    }
});
