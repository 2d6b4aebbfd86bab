//! The documentation a package ships that is derived from a command-line definition: a man
//! page (clap_mangen) and bash, zsh and fish completions (clap_complete), written from the
//! same `clap::Command` the binary parses with, so they cannot drift from the flags. Each
//! binary reaches this through a hidden flag (`dnstap_receiver --generate-assets DIR`,
//! `loadgen --generate-assets DIR`); `packaging/build-assets.sh` runs both before `cargo deb`.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Writes, under `dir`: `man/NAME.1`, `completions/bash/NAME`, `completions/zsh/_NAME`,
/// `completions/fish/NAME.fish` (the paths Debian installs them under, minus the prefix).
/// Returns the files written.
pub fn write_assets(mut cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let name = cmd.get_name().to_string();
    let mut written = Vec::new();
    let man_dir = dir.join("man");
    std::fs::create_dir_all(&man_dir)?;
    let man = man_dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(&man, page)?;
    written.push(man);
    for (shell, file) in [
        (Shell::Bash, name.clone()),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let sub = dir.join("completions").join(shell.to_string());
        std::fs::create_dir_all(&sub)?;
        let path = sub.join(file);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
        std::fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args::LowArgs;
    use clap::CommandFactory;

    #[test]
    fn man_page_and_completions_name_the_flags() {
        let dir = std::env::temp_dir().join(format!("assets-test-{}", std::process::id()));
        let files = write_assets(LowArgs::command(), &dir).unwrap();
        assert_eq!(files.len(), 4);
        let man = std::fs::read_to_string(dir.join("man/dnstap_receiver.1")).unwrap();
        assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
        assert!(man.contains("check\\-config"), "{man}");
        assert!(
            !man.contains("generate\\-assets"),
            "the hidden flag stays hidden"
        );
        let bash = std::fs::read_to_string(dir.join("completions/bash/dnstap_receiver")).unwrap();
        assert!(bash.contains("--check-config"));
        assert!(dir.join("completions/zsh/_dnstap_receiver").exists());
        assert!(dir.join("completions/fish/dnstap_receiver.fish").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
