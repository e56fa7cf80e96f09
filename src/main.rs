//! The binary: everything is in the library; this only hands over the arguments.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(pganalytics_collector::app::main(&args));
}
