//! Where formatted records go. For now: standard output, written in large chunks by the
//! writer thread (the pipeline buffers; this adds no second buffer). Knows nothing of
//! records or formats: it takes bytes.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;

/// Standard output as a plain file handle: no line buffering, no lock per write.
#[derive(Debug)]
pub struct StdoutSink {
    file: File,
}

impl StdoutSink {
    pub fn open() -> io::Result<StdoutSink> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(StdoutSink {
            file: File::from(fd),
        })
    }
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A pipe or terminal has no user-space buffer here; nothing to do.
        Ok(())
    }
}
