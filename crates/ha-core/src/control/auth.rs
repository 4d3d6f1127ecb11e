//! Who is calling: the peer's credentials from SO_PEERCRED, and whether they are an admin.

use nix::unistd::{Gid, Group, Uid, User};

/// The process on the other end of a control connection.
#[derive(Clone, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The admin group, resolved once when the server starts.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    pub admin_gid: Option<u32>,
}

impl Groups {
    /// Resolves `admin_group` by name; an unknown group admits nobody but root (and says so).
    pub fn resolve(admin_group: Option<&str>) -> Self {
        let admin_gid = admin_group.and_then(|name| match Group::from_name(name) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                tracing::warn!(
                    group = name,
                    "admin group does not exist; only root may change state"
                );
                None
            }
        });
        Groups { admin_gid }
    }

    /// Root, or a member of the admin group (primary or supplementary group of the calling
    /// process, read from /proc so that the process's real groups count, not only /etc/group).
    pub fn is_admin(&self, caller: &Caller) -> bool {
        if caller.uid == 0 {
            return true;
        }
        let Some(admin) = self.admin_gid else {
            return false;
        };
        if caller.gid == admin {
            return true;
        }
        if let Some(groups) = caller.pid.and_then(process_groups) {
            return groups.contains(&admin);
        }
        user_groups(caller.uid, caller.gid).contains(&admin)
    }
}

fn process_groups(pid: i32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Groups:"))?;
    Some(
        line["Groups:".len()..]
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

fn user_groups(uid: u32, gid: u32) -> Vec<u32> {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return vec![gid];
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return vec![gid];
    };
    nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
        .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![gid])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_always_admin_and_others_need_the_group() {
        let none = Groups::default();
        assert!(none.is_admin(&Caller {
            uid: 0,
            gid: 0,
            pid: None
        }));
        assert!(!none.is_admin(&Caller {
            uid: 65534,
            gid: 65534,
            pid: None
        }));
        let g = Groups {
            admin_gid: Some(4242),
        };
        assert!(g.is_admin(&Caller {
            uid: 1000,
            gid: 4242,
            pid: None
        }));
        assert!(!g.is_admin(&Caller {
            uid: 65534,
            gid: 65534,
            pid: None
        }));
    }
}
