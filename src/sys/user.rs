//! User and group names to ids, through the system's user database (`getpwnam_r`,
//! `getgrnam_r`: NSS, so LDAP and the like answer too). Start-up only.
#![forbid(unsafe_code)]

use std::io;

use nix::unistd::{Group, User};

/// The uid of a user name; `None` when there is no such user.
pub fn uid_by_name(name: &str) -> io::Result<Option<u32>> {
    Ok(User::from_name(name)?.map(|u| u.uid.as_raw()))
}

/// The gid of a group name; `None` when there is no such group.
pub fn gid_by_name(name: &str) -> io::Result<Option<u32>> {
    Ok(Group::from_name(name)?.map(|g| g.gid.as_raw()))
}
