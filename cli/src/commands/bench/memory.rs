//! Resident memory of the processes `--local` started, from `/proc/<pid>/status`.
//!
//! `VmRSS` is what the process holds now (read once the service is ready and idle) and
//! `VmHWM` the most it ever held (read after its load, before it is stopped), both in kB as
//! Linux reports them. Other systems have no `/proc`; the figures are then absent.

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Resident set now, kB.
    pub rss_kb: u64,
    /// Peak resident set so far, kB.
    pub hwm_kb: u64,
}

/// Reads `/proc/<pid>/status`; `None` when the process or the file is gone.
pub fn read(pid: u32) -> Option<Reading> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&text)
}

/// Extracts `VmRSS` and `VmHWM` from the text of a status file.
pub fn parse_status(text: &str) -> Option<Reading> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Reading {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// A service's memory over the run, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceMemory {
    /// Which process (`echo`, `state (normal)`, `nats-server`, …).
    pub service: String,
    /// Its pid.
    pub pid: u32,
    /// Whether the goals (idle < 15 MB, peak < 40 MB) apply to it: plantd services only.
    pub has_goal: bool,
    /// `VmRSS` once ready and idle, MB (1 MB = 1024 kB as `/proc` counts them).
    pub idle_mb: Option<f64>,
    /// `VmHWM` after its load, MB.
    pub peak_mb: Option<f64>,
}

impl ServiceMemory {
    /// A record from an idle reading and a peak reading.
    pub fn new(
        service: &str,
        pid: u32,
        has_goal: bool,
        idle: Option<Reading>,
        peak: Option<Reading>,
    ) -> ServiceMemory {
        let mb = |kb: u64| kb as f64 / 1024.0;
        ServiceMemory {
            service: service.to_string(),
            pid,
            has_goal,
            idle_mb: idle.map(|r| mb(r.rss_kb)),
            peak_mb: peak.map(|r| mb(r.hwm_kb)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_status_fields() {
        let text =
            "Name:\tplantd-echo\nVmPeak:\t  100 kB\nVmHWM:\t    9216 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Reading {
                rss_kb: 5120,
                hwm_kb: 9216
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id()).expect("/proc/self/status exists on Linux");
        assert!(me.rss_kb > 0 && me.hwm_kb >= me.rss_kb);
    }
}
