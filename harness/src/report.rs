//! Text tables (terminal and Markdown) and number formatting shared by the commands.

/// Renders rows as an aligned plain-text table with a header and a rule under it.
pub fn text_table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for row in std::iter::once(header).chain(rows.iter().map(|r| r.as_slice())) {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, w) in width.iter().enumerate() {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            s.push_str(cell);
            if i + 1 < cols {
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// Renders rows as a GitHub-flavoured Markdown table.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "| {} |\n|{}|\n",
        header
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | "),
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for row in rows {
        out.push_str(&format!(
            "| {} |\n",
            row.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

/// Operations per second, with a precision that suits the magnitude.
pub fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A duration given in microseconds, in µs, ms or s.
pub fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Merges several ordered lists into one: an item only some lists have goes right after the
/// item it follows in the first list that has it.
pub fn merge_order<T: PartialEq + Clone>(lists: impl IntoIterator<Item = Vec<T>>) -> Vec<T> {
    let mut order: Vec<T> = Vec::new();
    for list in lists {
        let mut at = 0usize;
        for item in list {
            match order.iter().position(|k| *k == item) {
                Some(p) => at = p + 1,
                None => {
                    order.insert(at, item);
                    at += 1;
                }
            }
        }
    }
    order
}

/// A count for an axis: 1, 10, 100, 1k, 10k, 100k, 1M.
pub fn fmt_count(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

/// Escapes text for XML (SVG).
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let h = vec!["a".to_string(), "bb".to_string()];
        let rows = vec![vec!["xyz".to_string(), "1".to_string()]];
        assert_eq!(text_table(&h, &rows), "a    bb\n-------\nxyz  1\n");
        assert_eq!(
            markdown_table(&h, &rows),
            "| a | bb |\n|---|---|\n| xyz | 1 |\n"
        );
    }

    #[test]
    fn merged_order_keeps_neighbours() {
        let a = vec!["s1", "v1", "s3"];
        let b = vec!["s1", "v1", "s2", "v2", "s3"];
        assert_eq!(merge_order([a, b]), vec!["s1", "v1", "s2", "v2", "s3"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_count(1.0), "1");
        assert_eq!(fmt_count(100000.0), "100k");
        assert_eq!(fmt_rate(12345.6), "12346");
        assert_eq!(fmt_rate(5.0), "5.00");
        assert_eq!(fmt_us(85.31), "85.3µs");
        assert_eq!(fmt_us(1500.0), "1.50ms");
    }
}
