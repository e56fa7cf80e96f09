//! The binary: everything is in the library; this only installs the allocator and hands over
//! the arguments.

/// musl's allocator behind a cache of freed blocks (src/sys/alloc.rs).
#[global_allocator]
static ALLOC: pganalytics_collector::sys::alloc::Global = pganalytics_collector::sys::alloc::Global;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(pganalytics_collector::app::main(&args));
}
