//! The operating-system edge: every system call std does not wrap, and the only module where
//! `unsafe` is allowed (the crate root denies it; every other module forbids it).
//!
//! Each file owns one concern and offers safe functions. The calls go through [`nix`]'s safe
//! wrappers where it has one (epoll, signalfd, socket options, user and group look-ups,
//! rlimit) and through `libc` or the `io-uring` crate where it has none; each `unsafe` block
//! states, in a `// SAFETY:` comment, why its invariant holds, and an `unsafe fn` has a
//! `# Safety` section that says what its caller must guarantee (docs/hardening.md).
//!
//! Knows nothing of frames, records, connections or configuration.

pub mod activation;
pub mod epoll;
pub mod limits;
pub mod notify;
pub mod signal;
pub mod socket;
pub mod uring;
pub mod user;
