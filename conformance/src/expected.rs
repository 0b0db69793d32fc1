//! Expected-deviation files: the known ways a module departs from the specification (or from
//! the profile), each with its reason. A listed case that fails is an expected failure; a
//! listed case that passes, or an unlisted one that fails, is news and fails the run.
//!
//! ```toml
//! module = "SoftHSM2 2.6.1 (Debian 12)"
//!
//! [[deviation]]
//! id = "K4C-ROLE-02"
//! reason = "SoftHSM2 lets the User change its own PIN with C_SetPIN"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// A parsed expected-deviation file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expected {
    /// What module the file describes.
    #[serde(default)]
    pub module: String,
    /// The deviations.
    #[serde(default, rename = "deviation")]
    pub deviations: Vec<Deviation>,
}

/// One known deviation.
#[derive(Debug, Clone, Deserialize)]
pub struct Deviation {
    /// The case id.
    pub id: String,
    /// Why the module does this.
    pub reason: String,
}

impl Expected {
    /// Reads and parses a file; a case listed twice is an error.
    pub fn load(path: &Path) -> Result<Expected, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Expected::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Expected, String> {
        let e: Expected = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::BTreeSet::new();
        for d in &e.deviations {
            if !seen.insert(d.id.as_str()) {
                return Err(format!("case {} is listed twice", d.id));
            }
        }
        Ok(e)
    }

    /// Case id -> reason.
    pub fn by_id(&self) -> BTreeMap<String, String> {
        self.deviations
            .iter()
            .map(|d| (d.id.clone(), d.reason.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_duplicates() {
        let e =
            Expected::parse("module = \"m\"\n[[deviation]]\nid = \"A\"\nreason = \"r\"\n").unwrap();
        assert_eq!(e.by_id().get("A").map(String::as_str), Some("r"));
        assert!(Expected::parse("[[deviation]]\nid = \"A\"\nreason = \"r\"\n[[deviation]]\nid = \"A\"\nreason = \"s\"\n").is_err());
    }
}
