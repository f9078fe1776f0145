//! How the runtime reaches a guest: the QEMU Guest Agent or SSH.
//!
//! With [`Transport::Auto`] (the default everywhere) readiness, buffered
//! `exec` (with or without stdin bytes), `copy_to`/`copy_from` and the stop
//! fallback use the guest agent when it answers and allows the commands the
//! call needs, and SSH otherwise. Interactive sessions and terminals always
//! use SSH. Forcing a transport turns the fallback off, so a caller can
//! test one path or avoid the other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A way to reach a guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The guest agent when it answers, else SSH.
    #[default]
    Auto,
    /// The QEMU Guest Agent only: no SSH server or key needed.
    Agent,
    /// SSH only.
    Ssh,
}

impl Transport {
    /// Every transport choice, in the order help texts list them.
    pub const ALL: [Transport; 3] = [Transport::Auto, Transport::Agent, Transport::Ssh];

    /// `auto`, `agent` or `ssh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::Agent => "agent",
            Transport::Ssh => "ssh",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = Error;

    /// Parses `auto`, `agent` or `ssh` (any case).
    fn from_str(s: &str) -> Result<Self, Error> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::invalid("transport", s, "expected auto, agent or ssh"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_each_choice() {
        for t in Transport::ALL {
            assert_eq!(t.as_str().parse::<Transport>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!("SSH".parse::<Transport>().unwrap(), Transport::Ssh);
        let e = "vsock".parse::<Transport>().unwrap_err().to_string();
        assert!(
            e.contains("vsock") && e.contains("auto, agent or ssh"),
            "{e}"
        );
        assert_eq!(Transport::default(), Transport::Auto);
    }
}
