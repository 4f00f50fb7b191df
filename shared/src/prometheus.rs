//! Rendering of the Prometheus text exposition format, version 0.0.4.
//!
//! The format is small enough that a builder over a `String` is clearer than a client library:
//! each metric family gets one `# HELP` and one `# TYPE` line, followed by one line per label set.
//! The format requires all samples of a family to be written as one group, so [`Exposition`]
//! writes the header when a family is first seen and debug-asserts that a family, once left, is
//! not written again. Metric and label names are compile-time constants in this crate, so invalid
//! names are programming errors caught by `debug_assert!`; label values and help text come from
//! data and are escaped as the format specifies.

use std::collections::HashSet;
use std::fmt::Write as _;

/// The `Content-Type` of a response carrying [`Exposition::finish`] output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds one scrape response in the Prometheus text format.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// Families whose `# HELP`/`# TYPE` header has been written.
    headed: HashSet<String>,
    /// The family written last: more samples of it continue the group.
    current: Option<(String, &'static str)>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes one sample of the gauge family `name`, with `help` as its description.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample("gauge", name, help, labels, value);
    }

    /// Writes one sample of the counter family `name`, which must end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name:?} must end in _total"
        );
        self.sample("counter", name, help, labels, value);
    }

    /// The rendered text, ready to serve with [`CONTENT_TYPE`].
    pub fn finish(self) -> String {
        self.out
    }

    /// A histogram: cumulative `buckets` as `(upper bound, observations ≤ it)` in increasing
    /// order (a `+Inf` bucket holding `count` is added), the observations' `sum` and `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let bounds: Vec<String> = buckets
            .iter()
            .map(|(le, _)| {
                let mut text = String::new();
                push_value(&mut text, *le);
                text
            })
            .chain(std::iter::once("+Inf".to_string()))
            .collect();
        let counts = buckets
            .iter()
            .map(|(_, n)| *n)
            .chain(std::iter::once(count));
        for (bound, n) in bounds.iter().zip(counts) {
            with_le.truncate(labels.len());
            with_le.push(("le", bound));
            self.line("histogram", name, "_bucket", help, &with_le, n as f64);
        }
        self.line("histogram", name, "_sum", help, labels, sum);
        self.line("histogram", name, "_count", help, labels, count as f64);
    }

    fn sample(
        &mut self,
        kind: &'static str,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.line(kind, name, "", help, labels, value);
    }

    /// One line of family `name` (its header first if new), named `name` + `suffix`.
    fn line(
        &mut self,
        kind: &'static str,
        name: &str,
        suffix: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        debug_assert!(is_metric_name(name), "invalid metric name {name:?}");
        match &self.current {
            Some((current, current_kind)) if current == name => {
                debug_assert_eq!(
                    *current_kind, kind,
                    "metric {name:?} written with two types"
                );
            }
            _ => {
                debug_assert!(
                    !self.headed.contains(name),
                    "metric family {name:?} interleaved with another family"
                );
                if self.headed.insert(name.to_owned()) {
                    self.out.push_str("# HELP ");
                    self.out.push_str(name);
                    self.out.push(' ');
                    escape_into(&mut self.out, help, false);
                    self.out.push('\n');
                    // Writing to a `String` cannot fail.
                    let _ = writeln!(self.out, "# TYPE {name} {kind}");
                }
                self.current = Some((name.to_owned(), kind));
            }
        }

        self.out.push_str(name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (label, label_value)) in labels.iter().enumerate() {
                debug_assert!(
                    is_label_name(label),
                    "invalid label name {label:?} on {name:?}"
                );
                if index > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_into(&mut self.out, label_value, true);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }
}

/// Escapes `\` and newline, and for label values also `"`, as the format requires.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}

/// Writes a sample value as Go's `strconv.ParseFloat` (which Prometheus uses) reads it.
fn push_value(out: &mut String, value: f64) {
    // Writing to a `String` cannot fail.
    let _ = if value.is_nan() {
        out.write_str("NaN")
    } else if value.is_infinite() {
        out.write_str(if value > 0.0 { "+Inf" } else { "-Inf" })
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Integers print without a fraction (`3`, not `3.0`); they are exact below 2^53.
        write!(out, "{value}")
    } else {
        // Shortest round-trip form, with an exponent for very large or small values (`1e300`).
        write!(out, "{value:?}")
    };
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_' || first == b':')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, without the `__` prefix reserved for Prometheus itself.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    !name.starts_with("__")
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_have_cumulative_buckets_sum_and_count() {
        let mut out = Exposition::new();
        out.histogram(
            "req_seconds",
            "Request time.",
            &[("endpoint", "get")],
            &[(0.001, 2), (0.01, 5)],
            0.034,
            6,
        );
        assert_eq!(
            out.finish(),
            "# HELP req_seconds Request time.\n# TYPE req_seconds histogram\n\
             req_seconds_bucket{endpoint=\"get\",le=\"0.001\"} 2\n\
             req_seconds_bucket{endpoint=\"get\",le=\"0.01\"} 5\n\
             req_seconds_bucket{endpoint=\"get\",le=\"+Inf\"} 6\n\
             req_seconds_sum{endpoint=\"get\"} 0.034\n\
             req_seconds_count{endpoint=\"get\"} 6\n"
        );
    }

    #[test]
    fn family_with_two_label_sets() {
        let mut exposition = Exposition::new();
        let help = "Bytes free on the file system.";
        exposition.gauge("plantd_disk_free_bytes", help, &[("path", "/")], 1024.0);
        exposition.gauge("plantd_disk_free_bytes", help, &[("path", "/var")], 0.5);
        exposition.counter("plantd_requests_total", "Requests served.", &[], 3.0);
        assert_eq!(
            exposition.finish(),
            "# HELP plantd_disk_free_bytes Bytes free on the file system.\n\
             # TYPE plantd_disk_free_bytes gauge\n\
             plantd_disk_free_bytes{path=\"/\"} 1024\n\
             plantd_disk_free_bytes{path=\"/var\"} 0.5\n\
             # HELP plantd_requests_total Requests served.\n\
             # TYPE plantd_requests_total counter\n\
             plantd_requests_total 3\n"
        );
    }

    #[test]
    fn one_header_per_family() {
        let mut exposition = Exposition::new();
        for shard in ["a", "b", "c"] {
            exposition.counter("x_total", "X.", &[("shard", shard), ("kind", "k")], 1.0);
        }
        let out = exposition.finish();
        assert_eq!(out.matches("# HELP").count(), 1, "{out}");
        assert_eq!(out.matches("# TYPE").count(), 1, "{out}");
        assert!(out.contains("x_total{shard=\"b\",kind=\"k\"} 1\n"), "{out}");
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut exposition = Exposition::new();
        let help = "A \\ \"quoted\"\nhelp";
        exposition.gauge("g", help, &[("v", "C:\\dir \"x\"\nend")], 1.0);
        assert_eq!(
            exposition.finish(),
            "# HELP g A \\\\ \"quoted\"\\nhelp\n\
             # TYPE g gauge\n\
             g{v=\"C:\\\\dir \\\"x\\\"\\nend\"} 1\n"
        );
    }

    #[test]
    fn special_and_extreme_floats() {
        let render = |value: f64| {
            let mut out = String::new();
            push_value(&mut out, value);
            out
        };
        assert_eq!(render(f64::NAN), "NaN");
        assert_eq!(render(f64::INFINITY), "+Inf");
        assert_eq!(render(f64::NEG_INFINITY), "-Inf");
        assert_eq!(render(0.0), "0");
        assert_eq!(render(-42.0), "-42");
        assert_eq!(render(0.1), "0.1");
        assert_eq!(render(1e300), "1e300");
        assert_eq!(render(1.5e-9), "1.5e-9");
        for value in [
            0.1,
            1e300,
            1.5e-9,
            123456789.125,
            1e15,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(render(value).parse::<f64>(), Ok(value), "{value}");
        }
    }

    #[test]
    fn name_rules() {
        assert!(is_metric_name("plantd:cpu_busy_ratio") && is_metric_name("_x1"));
        assert!(!is_metric_name("") && !is_metric_name("1x") && !is_metric_name("a-b"));
        assert!(is_label_name("path") && is_label_name("_x9"));
        assert!(!is_label_name("a:b") && !is_label_name("__name__") && !is_label_name("9"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "interleaved")]
    fn interleaved_family_is_caught() {
        let mut exposition = Exposition::new();
        exposition.gauge("a", "A.", &[], 1.0);
        exposition.gauge("b", "B.", &[], 1.0);
        exposition.gauge("a", "A.", &[("x", "y")], 1.0);
    }
}
