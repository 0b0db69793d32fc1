//! The run's report: a terminal summary, `report.md`, `junit.xml` and `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::case::Chapter;
use crate::guard::{PinGuard, Role};
use crate::protocol::ProvisionInfo;

/// The final status of a case, after the expected-deviation file is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As specified.
    Pass,
    /// Not as specified, and not a known deviation.
    Fail,
    /// Not as specified, as the expected-deviation file says.
    ExpectedFail,
    /// Listed as a known deviation, but the module now does what the spec says (or the case
    /// no longer applies): the list is out of date.
    UnexpectedPass,
    /// Not applicable (mechanism or function absent where the spec allows it).
    NotApplicable,
}

impl Status {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::ExpectedFail => "expected failure",
            Status::UnexpectedPass => "UNEXPECTED PASS",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One case in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Case id.
    pub id: String,
    /// Chapter.
    pub chapter: Chapter,
    /// Spec section.
    pub section: String,
    /// What it checks.
    pub title: String,
    /// Expected result.
    pub expect: String,
    /// Final status.
    pub status: Status,
    /// Returned vs expected, or the N/A reason.
    pub detail: String,
    /// The known-deviation reason, if listed.
    pub deviation: Option<String>,
    /// Duration in milliseconds.
    pub ms: u64,
}

/// Everything about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The module's path.
    pub module: String,
    /// When the run started (UTC, RFC 3339-ish).
    pub started: String,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// What provisioning found.
    pub info: ProvisionInfo,
    /// Whether the Key4C profile ran.
    pub key4c_profile: bool,
    /// The expected-deviation file used.
    pub expected_file: Option<String>,
    /// The wrong-PIN guard at the end (totals = wrong PINs sent).
    pub guard: PinGuard,
    /// Things the reader should know (lockout cases skipped, token left locked, ...).
    pub notes: Vec<String>,
    /// Ids in the expected-deviation file that name no case.
    pub stale_expected: Vec<String>,
    /// The cases.
    pub records: Vec<Record>,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Expected failures.
    pub expected_fail: usize,
    /// Unexpected passes.
    pub unexpected_pass: usize,
    /// Not applicable.
    pub not_applicable: usize,
}

impl Counts {
    fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::ExpectedFail => self.expected_fail += 1,
            Status::UnexpectedPass => self.unexpected_pass += 1,
            Status::NotApplicable => self.not_applicable += 1,
        }
    }

    /// All cases.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.expected_fail + self.unexpected_pass + self.not_applicable
    }
}

impl Report {
    /// No failure, no unexpected pass, no stale expected entry.
    pub fn ok(&self) -> bool {
        self.records
            .iter()
            .all(|r| !matches!(r.status, Status::Fail | Status::UnexpectedPass))
            && self.stale_expected.is_empty()
    }

    /// Counts, over all cases or one chapter.
    pub fn counts(&self, chapter: Option<Chapter>) -> Counts {
        let mut c = Counts::default();
        for r in self
            .records
            .iter()
            .filter(|r| chapter.is_none_or(|ch| r.chapter == ch))
        {
            c.add(r.status);
        }
        c
    }

    fn chapters(&self) -> Vec<Chapter> {
        Chapter::ALL
            .into_iter()
            .filter(|c| self.records.iter().any(|r| r.chapter == *c))
            .collect()
    }

    fn pin_line(&self) -> String {
        format!(
            "Wrong PINs sent: SO {}, User {} (the guard never lets an ordinary case reach the \
             assumed lockout limit of {}; only the lockout cases go to it on purpose)",
            self.guard.total(Role::So),
            self.guard.total(Role::User),
            self.guard.limit
        )
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "PKCS#11 conformance: {}", self.module);
        let _ = writeln!(
            s,
            "  {} / {} / model {:?}, Cryptoki {}{}",
            self.info.library_manufacturer,
            self.info.library_description,
            self.info.model,
            self.info.cryptoki_version,
            if self.key4c_profile {
                ", Key4C profile"
            } else {
                ""
            }
        );
        for ch in self.chapters() {
            let c = self.counts(Some(ch));
            let _ = writeln!(
                s,
                "  {:<52} {:>3} cases: {:>3} pass {:>3} fail {:>3} xfail {:>3} xpass {:>3} n/a",
                ch.title(),
                c.total(),
                c.pass,
                c.fail,
                c.expected_fail,
                c.unexpected_pass,
                c.not_applicable
            );
        }
        let c = self.counts(None);
        let _ = writeln!(
            s,
            "  total {} cases: {} pass, {} fail, {} expected failures, {} unexpected passes, {} n/a ({:.1} s)",
            c.total(),
            c.pass,
            c.fail,
            c.expected_fail,
            c.unexpected_pass,
            c.not_applicable,
            self.seconds
        );
        for r in self
            .records
            .iter()
            .filter(|r| matches!(r.status, Status::Fail | Status::UnexpectedPass))
        {
            let _ = writeln!(
                s,
                "  {} {} [{}]: {}",
                r.status.label(),
                r.id,
                r.section,
                r.detail
            );
        }
        for id in &self.stale_expected {
            let _ = writeln!(s, "  STALE expected-deviation entry: {id} names no case");
        }
        let _ = writeln!(s, "  {}", self.pin_line());
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        let _ = writeln!(s, "  result: {}", if self.ok() { "OK" } else { "FAILED" });
        s
    }

    /// `report.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let c = self.counts(None);
        let _ = writeln!(s, "# PKCS#11 conformance report\n");
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| module | `{}` |", self.module);
        let _ = writeln!(
            s,
            "| library | {} — {} {} (Cryptoki {}) |",
            md(&self.info.library_manufacturer),
            md(&self.info.library_description),
            self.info.library_version,
            self.info.cryptoki_version
        );
        let _ = writeln!(
            s,
            "| token | model {}, manufacturer {}, serial {}, slot {} |",
            md(&self.info.model),
            md(&self.info.token_manufacturer),
            md(&self.info.serial),
            self.info.slot
        );
        let _ = writeln!(
            s,
            "| PKCS#11 3.0 interface | {} |",
            if self.info.has_v3 { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "| profile | generic PKCS#11 3.0{} |",
            if self.key4c_profile {
                " + Key4C V3"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "| expected deviations | {} |",
            self.expected_file
                .as_deref()
                .map_or("none".to_string(), |f| format!("`{f}`"))
        );
        let _ = writeln!(s, "| started | {} |", self.started);
        let _ = writeln!(s, "| duration | {:.1} s |", self.seconds);
        let _ = writeln!(
            s,
            "| token on arrival | {} |",
            if self.info.fresh_token {
                "uninitialised (created by the suite)".to_string()
            } else {
                format!(
                    "initialised, {} object(s), re-initialised",
                    self.info.objects_found
                )
            }
        );
        let _ = writeln!(
            s,
            "| wrong PINs sent | SO {}, User {} (assumed lockout limit {}) |",
            self.guard.total(Role::So),
            self.guard.total(Role::User),
            self.guard.limit
        );
        let _ = writeln!(
            s,
            "| result | **{}** |\n",
            if self.ok() { "OK" } else { "FAILED" }
        );
        let _ = writeln!(s, "{}\n", self.pin_line());
        for n in &self.notes {
            let _ = writeln!(s, "- {}", md(n));
        }
        if !self.notes.is_empty() {
            s.push('\n');
        }
        let _ = writeln!(s, "## Summary\n\n| chapter | cases | pass | fail | expected failure | unexpected pass | n/a |\n|---|---:|---:|---:|---:|---:|---:|");
        for ch in self.chapters() {
            let k = self.counts(Some(ch));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                ch.title(),
                k.total(),
                k.pass,
                k.fail,
                k.expected_fail,
                k.unexpected_pass,
                k.not_applicable
            );
        }
        let _ = writeln!(
            s,
            "| **total** | **{}** | {} | {} | {} | {} | {} |\n",
            c.total(),
            c.pass,
            c.fail,
            c.expected_fail,
            c.unexpected_pass,
            c.not_applicable
        );
        if !self.stale_expected.is_empty() {
            let _ = writeln!(
                s,
                "Stale expected-deviation entries (no such case): {}\n",
                self.stale_expected.join(", ")
            );
        }
        for ch in self.chapters() {
            let _ = writeln!(s, "## {}\n\n| id | section | check | expected | outcome | returned / detail |\n|---|---|---|---|---|---|", ch.title());
            for r in self.records.iter().filter(|r| r.chapter == ch) {
                let mut detail = r.detail.clone();
                if let Some(d) = &r.deviation {
                    detail = if detail.is_empty() {
                        format!("known deviation: {d}")
                    } else {
                        format!("{detail} — known deviation: {d}")
                    };
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    r.id,
                    md(&r.section),
                    md(&r.title),
                    md(&r.expect),
                    r.status.label(),
                    md(&detail)
                );
            }
            s.push('\n');
        }
        s
    }

    /// `junit.xml`: one suite per chapter. Expected failures pass (with a note), N/A cases are
    /// skipped, failures and unexpected passes fail.
    pub fn junit(&self) -> String {
        let c = self.counts(None);
        let mut s = String::new();
        let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        let _ = writeln!(
            s,
            "<testsuites name=\"pkcs11-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            c.total(),
            c.fail + c.unexpected_pass,
            c.not_applicable,
            self.seconds
        );
        for ch in self.chapters() {
            let k = self.counts(Some(ch));
            let time: u64 = self
                .records
                .iter()
                .filter(|r| r.chapter == ch)
                .map(|r| r.ms)
                .sum();
            let _ = writeln!(
                s,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
                xml(ch.short()),
                k.total(),
                k.fail + k.unexpected_pass,
                k.not_applicable,
                time as f64 / 1000.0
            );
            for r in self.records.iter().filter(|r| r.chapter == ch) {
                let _ = write!(
                    s,
                    "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">",
                    xml(ch.short()),
                    xml(&r.id),
                    xml(&r.title),
                    r.ms as f64 / 1000.0
                );
                match r.status {
                    Status::Pass => {}
                    Status::Fail => {
                        let _ = write!(
                            s,
                            "<failure message=\"{}\">expected: {}\n{}</failure>",
                            xml(&r.detail),
                            xml(&r.expect),
                            xml(&r.section)
                        );
                    }
                    Status::UnexpectedPass => {
                        let _ = write!(s, "<failure message=\"listed as a known deviation but did not fail: {}\">{}</failure>", xml(r.deviation.as_deref().unwrap_or("")), xml(&r.detail));
                    }
                    Status::ExpectedFail => {
                        let _ = write!(
                            s,
                            "<system-out>expected failure ({}): {}</system-out>",
                            xml(r.deviation.as_deref().unwrap_or("")),
                            xml(&r.detail)
                        );
                    }
                    Status::NotApplicable => {
                        let _ = write!(s, "<skipped message=\"{}\"/>", xml(&r.detail));
                    }
                }
                let _ = writeln!(s, "</testcase>");
            }
            let _ = writeln!(s, "  </testsuite>");
        }
        let _ = writeln!(s, "</testsuites>");
        s
    }

    /// Writes `report.md`, `junit.xml` and `results.json` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        std::fs::write(dir.join("junit.xml"), self.junit())?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("results.json"), json)
    }
}

/// Text for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Text for XML attributes and content.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_everything_that_matters() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }
}
