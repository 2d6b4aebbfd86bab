//! The `dnstap_receiver` binary. CONTRACT STUB: the receiver helper replaces it.
fn main() {
    eprintln!("dnstap_receiver: not built yet");
    std::process::exit(1);
}
