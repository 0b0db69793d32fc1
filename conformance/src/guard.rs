//! The wrong-PIN guard: the suite never brute-forces a PIN. It counts every wrong PIN it sends,
//! per role, and refuses to send one that would reach the module's lockout limit (only the
//! lockout cases, which run last and only where allowed, go to the limit on purpose).

use serde::{Deserialize, Serialize};

/// A role that owns a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The Security Officer.
    So,
    /// The normal user.
    User,
}

impl Role {
    fn index(self) -> usize {
        match self {
            Role::So => 0,
            Role::User => 1,
        }
    }

    /// "SO" or "User".
    pub fn name(self) -> &'static str {
        match self {
            Role::So => "SO",
            Role::User => "User",
        }
    }
}

/// Wrong-PIN bookkeeping for one run (carried from worker to worker by the runner).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinGuard {
    /// The module's lockout limit as the suite assumes it: the wrong PIN that would reach it is
    /// never sent by an ordinary case.
    pub limit: u32,
    /// Wrong PINs sent since the last correct one, per role (SO, User).
    pub consecutive: [u32; 2],
    /// Wrong PINs sent in the whole run, per role (SO, User).
    pub total: [u32; 2],
}

impl PinGuard {
    /// A guard for a module that locks a PIN after `limit` consecutive wrong ones.
    pub fn new(limit: u32) -> PinGuard {
        PinGuard {
            limit,
            ..Default::default()
        }
    }

    /// Whether `n` more wrong PINs for `role` stay below the limit.
    pub fn allows(&self, role: Role, n: u32) -> bool {
        self.consecutive[role.index()].saturating_add(n) < self.limit
    }

    /// Records a wrong PIN sent for `role`.
    pub fn wrong(&mut self, role: Role) {
        self.consecutive[role.index()] += 1;
        self.total[role.index()] += 1;
    }

    /// Records a correct PIN accepted for `role` (the module resets its counter).
    pub fn correct(&mut self, role: Role) {
        self.consecutive[role.index()] = 0;
    }

    /// Wrong PINs sent for `role` in the run.
    pub fn total(&self, role: Role) -> u32 {
        self.total[role.index()]
    }

    /// Wrong PINs sent for `role` since its last correct one.
    pub fn consecutive(&self, role: Role) -> u32 {
        self.consecutive[role.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_reaches_the_limit() {
        let mut g = PinGuard::new(5);
        for _ in 0..4 {
            assert!(g.allows(Role::User, 1));
            g.wrong(Role::User);
        }
        assert!(!g.allows(Role::User, 1));
        assert!(g.allows(Role::So, 4));
        assert!(!g.allows(Role::So, 5));
        g.correct(Role::User);
        assert!(g.allows(Role::User, 4));
        assert_eq!(g.total(Role::User), 4);
    }
}
