//! `loadgen`: a Frame Streams load generator. STUB: the loadgen helper replaces it.
fn main() {
    eprintln!("loadgen: not built yet");
    std::process::exit(1);
}
