//! Host and process sampling on Linux, read straight from `/proc` and `statvfs(3)`.
//!
//! Most values are instantaneous (memory, load, disk, rss), but cpu busy time is not: `/proc/stat`
//! holds tick counters accumulated since boot, so a busy ratio only means something as the
//! difference between two reads. That is why [`Sampler`] is a stateful struct that keeps the
//! previous `/proc/stat` read; the very first sample has no previous read and is computed against
//! boot, i.e. it is the average busy ratio since the machine started.
//!
//! The parsers are pure functions over the file text, so they are tested with fixtures and
//! malformed input (which yields [`SampleError::Parse`], never a panic), and only
//! [`Sampler::sample`] touches the file system. Samples are plain numbers and strings so the same
//! structs encode as JSON and render as Prometheus text without conversion.
//!
//! Clock ticks per second and the page size are read from the process's auxiliary vector
//! (`/proc/self/auxv`: `AT_CLKTCK`, `AT_PAGESZ`), which is what `sysconf(3)` returns for them and
//! needs no extra `nix` feature nor `unsafe`. If it cannot be read, the Linux defaults are used:
//! 100 ticks (`USER_HZ`, the unit of `/proc/stat` and `/proc/<pid>/stat` on every mainstream
//! architecture) and 4096-byte pages (wrong on 16K/64K-page arm64 and ppc64 kernels, hence auxv).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Ticks per second assumed when `/proc/self/auxv` has no `AT_CLKTCK` (`USER_HZ` on Linux).
const DEFAULT_TICKS_PER_SECOND: u64 = 100;
/// Page size assumed when `/proc/self/auxv` has no `AT_PAGESZ`.
const DEFAULT_PAGE_SIZE: u64 = 4096;
/// `AT_PAGESZ` in `<elf.h>`: system page size.
const AT_PAGESZ: u64 = 6;
/// `AT_CLKTCK` in `<elf.h>`: frequency of `times(2)` ticks.
const AT_CLKTCK: u64 = 17;

/// Host-wide resource usage at one instant (cpu: since the previous sample).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HostSample {
    /// Fraction of cpu time spent busy, in `0..=1` across all cpus, since the last sample.
    pub cpu_busy_ratio: f64,
    /// Number of cpus listed in `/proc/stat`.
    pub cpus: u32,
    /// One-minute load average.
    pub load1: f64,
    /// `MemTotal` in bytes.
    pub memory_total_bytes: u64,
    /// `MemAvailable` in bytes: what can be allocated without swapping.
    pub memory_available_bytes: u64,
    /// The path whose file system is measured.
    pub disk_path: String,
    /// Size of that file system in bytes.
    pub disk_total_bytes: u64,
    /// Bytes available to unprivileged users on that file system.
    pub disk_available_bytes: u64,
}

/// Resource usage of the sampling process itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProcessSample {
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// User plus system cpu time since the process started, in seconds.
    pub cpu_seconds_total: f64,
    /// Number of threads.
    pub threads: u32,
    /// Number of open file descriptors.
    pub open_fds: u32,
}

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A `/proc` file, directory or the disk path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path that failed.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but its contents were not in the expected format.
    #[error("cannot parse {what}: {message}")]
    Parse {
        /// Which file or value was being parsed.
        what: &'static str,
        /// What was wrong with it.
        message: String,
    },
}

fn parse_error(what: &'static str, message: impl Into<String>) -> SampleError {
    SampleError::Parse {
        what,
        message: message.into(),
    }
}

/// Aggregate cpu time counters from the `cpu ` line of `/proc/stat`, in clock ticks since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Time in user mode (includes guest time).
    pub user: u64,
    /// Time in user mode with low priority (includes guest_nice time).
    pub nice: u64,
    /// Time in kernel mode.
    pub system: u64,
    /// Time idle.
    pub idle: u64,
    /// Time idle waiting for I/O.
    pub iowait: u64,
    /// Time servicing interrupts.
    pub irq: u64,
    /// Time servicing softirqs.
    pub softirq: u64,
    /// Time stolen by the hypervisor.
    pub steal: u64,
}

impl CpuTimes {
    /// All ticks counted (guest time is already inside `user` and `nice`, so it is not added).
    pub fn total(&self) -> u64 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .fold(0u64, |sum, ticks| sum.saturating_add(*ticks))
    }

    /// Ticks not spent idle or waiting for I/O.
    pub fn busy(&self) -> u64 {
        self.total()
            .saturating_sub(self.idle)
            .saturating_sub(self.iowait)
    }

    /// Busy fraction of the ticks between `earlier` and `self`, clamped to `0..=1`; `0.0` when no
    /// time passed (or the counters went backwards, as `iowait` may).
    pub fn busy_ratio_since(&self, earlier: &CpuTimes) -> f64 {
        let total = self.total().saturating_sub(earlier.total());
        if total == 0 {
            return 0.0;
        }
        let busy = self.busy().saturating_sub(earlier.busy());
        (busy as f64 / total as f64).clamp(0.0, 1.0)
    }
}

fn parse_u64(what: &'static str, field: &str, text: &str) -> Result<u64, SampleError> {
    text.parse()
        .map_err(|_| parse_error(what, format!("{field} is not a count: {text:?}")))
}

/// Parses the aggregate `cpu ` line of `/proc/stat`. The first four counters are required; the
/// later ones (`iowait`, `irq`, `softirq`, `steal`, added in Linux 2.5–2.6.11) default to zero.
pub fn parse_proc_stat_cpu(text: &str) -> Result<CpuTimes, SampleError> {
    const WHAT: &str = "/proc/stat";
    const NAMES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut fields = text
        .lines()
        .map(str::split_whitespace)
        .find_map(|mut fields| (fields.next() == Some("cpu")).then_some(fields))
        .ok_or_else(|| parse_error(WHAT, "no aggregate \"cpu\" line"))?;
    let mut values = [0u64; 8];
    for (index, (name, value)) in NAMES.iter().zip(values.iter_mut()).enumerate() {
        match fields.next() {
            Some(text) => *value = parse_u64(WHAT, name, text)?,
            None if index < 4 => {
                return Err(parse_error(
                    WHAT,
                    format!("\"cpu\" line has no {name} field"),
                ));
            }
            None => break,
        }
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values;
    Ok(CpuTimes {
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
    })
}

/// Counts the per-cpu `cpuN` lines of `/proc/stat` (the cpus online); at least one is required.
pub fn parse_cpu_count(text: &str) -> Result<u32, SampleError> {
    let count = text
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.strip_prefix("cpu"))
        .filter(|id| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()))
        .count();
    match u32::try_from(count) {
        Ok(0) => Err(parse_error("/proc/stat", "no \"cpuN\" lines")),
        Ok(count) => Ok(count),
        Err(_) => Err(parse_error("/proc/stat", format!("{count} cpus"))),
    }
}

/// Parses `/proc/meminfo` into `(MemTotal, MemAvailable)` in bytes; both must be present in kB.
pub fn parse_meminfo(text: &str) -> Result<(u64, u64), SampleError> {
    const WHAT: &str = "/proc/meminfo";
    let field = |key: &'static str| -> Result<u64, SampleError> {
        let rest = text
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .ok_or_else(|| parse_error(WHAT, format!("no {key} line")))?;
        let mut parts = rest.split_whitespace();
        let (Some(value), Some("kB"), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(parse_error(
                WHAT,
                format!("{key} is not \"<n> kB\": {rest:?}"),
            ));
        };
        parse_u64(WHAT, key, value)?
            .checked_mul(1024)
            .ok_or_else(|| parse_error(WHAT, format!("{key} overflows bytes: {value} kB")))
    };
    Ok((field("MemTotal")?, field("MemAvailable")?))
}

/// Parses the one-minute load average, the first field of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Result<f64, SampleError> {
    const WHAT: &str = "/proc/loadavg";
    let first = text
        .split_whitespace()
        .next()
        .ok_or_else(|| parse_error(WHAT, "empty"))?;
    match first.parse::<f64>() {
        Ok(load) if load.is_finite() && load >= 0.0 => Ok(load),
        _ => Err(parse_error(WHAT, format!("load1 is not a load: {first:?}"))),
    }
}

/// Parses `/proc/<pid>/stat` into `(cpu_seconds, rss_bytes, threads)`: utime + stime (fields 14,
/// 15) over `ticks_per_second`, rss (field 24) times `page_size`, and num_threads (field 20),
/// numbered from 1 as in proc(5). Field 2, `comm`, may hold spaces and parentheses, so the fields
/// are split after the last `)`.
pub fn parse_self_stat(
    text: &str,
    ticks_per_second: u64,
    page_size: u64,
) -> Result<(f64, u64, u32), SampleError> {
    const WHAT: &str = "/proc/self/stat";
    if ticks_per_second == 0 {
        return Err(parse_error(WHAT, "ticks per second is zero"));
    }
    let after_comm = match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) if open < close => &text[close + 1..],
        _ => return Err(parse_error(WHAT, "no \"(comm)\" field")),
    };
    // `fields[0]` is field 3 (state), so field `n` is `fields[n - 3]`.
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |number: usize, name: &'static str| -> Result<u64, SampleError> {
        let text = fields
            .get(number - 3)
            .ok_or_else(|| parse_error(WHAT, format!("no field {number} ({name})")))?;
        parse_u64(WHAT, name, text)
    };
    let ticks = field(14, "utime")?.saturating_add(field(15, "stime")?);
    let threads = u32::try_from(field(20, "num_threads")?)
        .map_err(|_| parse_error(WHAT, "num_threads overflows u32"))?;
    let rss_bytes = field(24, "rss")?
        .checked_mul(page_size)
        .ok_or_else(|| parse_error(WHAT, "rss overflows bytes"))?;
    Ok((ticks as f64 / ticks_per_second as f64, rss_bytes, threads))
}

/// Looks `key` up in an auxiliary vector (`/proc/self/auxv`: native-endian word pairs).
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = size_of::<usize>();
    auxv.chunks_exact(2 * WORD)
        .map(|pair| {
            let word = |bytes: &[u8]| {
                let mut buffer = [0u8; WORD];
                buffer.copy_from_slice(bytes);
                usize::from_ne_bytes(buffer) as u64
            };
            (word(&pair[..WORD]), word(&pair[WORD..]))
        })
        .take_while(|(entry, _)| *entry != 0) // AT_NULL ends the vector.
        .find_map(|(entry, value)| (entry == key && value != 0).then_some(value))
}

fn read(path: &str) -> Result<String, SampleError> {
    std::fs::read_to_string(path).map_err(|source| SampleError::Read {
        path: path.to_owned(),
        source,
    })
}

fn count_entries(path: &str) -> Result<u32, SampleError> {
    let read_error = |source| SampleError::Read {
        path: path.to_owned(),
        source,
    };
    let mut count = 0u32;
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        entry.map_err(read_error)?;
        count = count.saturating_add(1);
    }
    Ok(count)
}

fn statvfs_bytes(path: &Path) -> Result<(u64, u64), SampleError> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(|errno| SampleError::Read {
        path: path.display().to_string(),
        source: errno.into(),
    })?;
    let fragment = stat.fragment_size() as u64;
    Ok((
        (stat.blocks() as u64).saturating_mul(fragment),
        (stat.blocks_available() as u64).saturating_mul(fragment),
    ))
}

/// Takes [`HostSample`]s and [`ProcessSample`]s, keeping the previous cpu counters so each cpu
/// ratio covers the time since the previous sample (the first one: since boot).
#[derive(Debug)]
pub struct Sampler {
    disk_path: PathBuf,
    previous_cpu: Option<CpuTimes>,
    ticks_per_second: u64,
    page_size: u64,
}

impl Sampler {
    /// A sampler measuring the file system that holds `disk_path`.
    pub fn new(disk_path: impl Into<PathBuf>) -> Sampler {
        let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
        Sampler {
            disk_path: disk_path.into(),
            previous_cpu: None,
            ticks_per_second: auxv_value(&auxv, AT_CLKTCK).unwrap_or(DEFAULT_TICKS_PER_SECOND),
            page_size: auxv_value(&auxv, AT_PAGESZ).unwrap_or(DEFAULT_PAGE_SIZE),
        }
    }

    /// Reads `/proc` and the disk once. The previous cpu counters are only replaced when the whole
    /// sample succeeds, so a failed sample does not shorten the next ratio's window.
    pub fn sample(&mut self) -> Result<(HostSample, ProcessSample), SampleError> {
        let stat = read("/proc/stat")?;
        let cpu = parse_proc_stat_cpu(&stat)?;
        let cpus = parse_cpu_count(&stat)?;
        let (memory_total_bytes, memory_available_bytes) = parse_meminfo(&read("/proc/meminfo")?)?;
        let load1 = parse_loadavg(&read("/proc/loadavg")?)?;
        let (disk_total_bytes, disk_available_bytes) = statvfs_bytes(&self.disk_path)?;
        let (cpu_seconds_total, rss_bytes, threads) = parse_self_stat(
            &read("/proc/self/stat")?,
            self.ticks_per_second,
            self.page_size,
        )?;
        // The directory handle `read_dir` holds while listing is itself one of the entries.
        let open_fds = count_entries("/proc/self/fd")?.saturating_sub(1);

        let cpu_busy_ratio = cpu.busy_ratio_since(&self.previous_cpu.unwrap_or_default());
        self.previous_cpu = Some(cpu);
        let host = HostSample {
            cpu_busy_ratio,
            cpus,
            load1,
            memory_total_bytes,
            memory_available_bytes,
            disk_path: self.disk_path.display().to_string(),
            disk_total_bytes,
            disk_available_bytes,
        };
        let process = ProcessSample {
            rss_bytes,
            cpu_seconds_total,
            threads,
            open_fds,
        };
        Ok((host, process))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_STAT: &str = "cpu  4705 356 584 3699176 23 0 12 0 0 0\n\
        cpu0 1393 280 301 924563 10 0 6 0 0 0\n\
        cpu1 1105 25 95 925100 4 0 3 0 0 0\n\
        cpu2 1170 30 93 924788 5 0 2 0 0 0\n\
        cpu3 1037 21 95 924725 4 0 1 0 0 0\n\
        intr 114930548 113199788 3 0 5 263 0 4 [... 50 more]\n\
        ctxt 1990473\nbtime 1062191376\nprocesses 2915\nprocs_running 1\n";

    const MEMINFO: &str = "MemTotal:       16318276 kB\n\
        MemFree:         1133980 kB\n\
        MemAvailable:   11202340 kB\n\
        Buffers:          612112 kB\n\
        HugePages_Total:       0\n";

    const SELF_STAT: &str = "8458 (tricky) name)) R 8450 8450 8045 0 -1 4194304 102 0 0 0 \
        250 50 0 0 20 0 7 0 3096602 3133440 395 18446744073709551615 94338770481152 0";

    fn is_parse(result: Result<impl std::fmt::Debug, SampleError>) -> bool {
        matches!(result, Err(SampleError::Parse { .. }))
    }

    #[test]
    fn proc_stat_cpu_line_and_count() {
        let cpu = parse_proc_stat_cpu(PROC_STAT).unwrap();
        assert_eq!(
            (cpu.user, cpu.idle, cpu.softirq, cpu.steal),
            (4705, 3699176, 12, 0)
        );
        assert_eq!(cpu.total(), 4705 + 356 + 584 + 3699176 + 23 + 12);
        assert_eq!(cpu.busy(), 4705 + 356 + 584 + 12);
        assert_eq!(parse_cpu_count(PROC_STAT).unwrap(), 4);
        // Pre-2.6.11 kernels: four fields only.
        assert_eq!(parse_proc_stat_cpu("cpu 1 2 3 4\n").unwrap().idle, 4);
    }

    #[test]
    fn proc_stat_malformed() {
        for text in [
            "",
            "cpu0 1 2 3 4\n",
            "cpu 1 2 3\n",
            "cpu 1 x 3 4\n",
            "cpu -1 2 3 4 5",
        ] {
            assert!(is_parse(parse_proc_stat_cpu(text)), "{text:?}");
        }
        assert!(is_parse(parse_cpu_count("cpu 1 2 3 4\ncpux 1\n")));
    }

    #[test]
    fn busy_ratio_between_reads() {
        let earlier = CpuTimes {
            user: 100,
            idle: 100,
            ..CpuTimes::default()
        };
        let later = CpuTimes {
            user: 130,
            idle: 170,
            iowait: 0,
            ..earlier
        };
        assert!((later.busy_ratio_since(&earlier) - 0.3).abs() < 1e-12);
        assert_eq!(earlier.busy_ratio_since(&earlier), 0.0);
        assert_eq!(earlier.busy_ratio_since(&later), 0.0); // counters went backwards
        let wait = CpuTimes {
            iowait: 50,
            ..earlier
        };
        assert_eq!(wait.busy_ratio_since(&earlier), 0.0);
    }

    #[test]
    fn meminfo_in_bytes() {
        assert_eq!(
            parse_meminfo(MEMINFO).unwrap(),
            (16318276 * 1024, 11202340 * 1024)
        );
    }

    #[test]
    fn meminfo_malformed() {
        for text in [
            "",
            "MemTotal: 1 kB\n",                     // no MemAvailable
            "MemTotal: 1 kB\nMemAvailable: 2\n",    // no unit
            "MemTotal: 1 kB\nMemAvailable: 2 MB\n", // wrong unit
            "MemTotal: x kB\nMemAvailable: 2 kB\n", // not a number
            "MemTotal: 18446744073709551615 kB\nMemAvailable: 2 kB\n", // overflow
        ] {
            assert!(is_parse(parse_meminfo(text)), "{text:?}");
        }
    }

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/1234 5678\n").unwrap(), 0.52);
        for text in ["", "\n", "high 0.1 0.1", "-1 0 0", "NaN 0 0", "inf 0 0"] {
            assert!(is_parse(parse_loadavg(text)), "{text:?}");
        }
    }

    #[test]
    fn self_stat_splits_after_last_paren() {
        let (cpu_seconds, rss_bytes, threads) = parse_self_stat(SELF_STAT, 100, 4096).unwrap();
        assert!((cpu_seconds - 3.0).abs() < 1e-12);
        assert_eq!((rss_bytes, threads), (395 * 4096, 7));
    }

    #[test]
    fn self_stat_malformed() {
        for text in [
            "",
            "8458 cat R 1 2 3",
            "8458 )cat( R 8450",
            "8458 (cat) R 8450 8450 8045 0 -1 4194304 102 0 0 0 250",
            "8458 (cat) R 8450 8450 8045 0 -1 4194304 102 0 0 0 x 50 0 0 20 0 7 0 1 2 395",
        ] {
            assert!(is_parse(parse_self_stat(text, 100, 4096)), "{text:?}");
        }
        assert!(is_parse(parse_self_stat(SELF_STAT, 0, 4096)));
        assert!(is_parse(parse_self_stat(SELF_STAT, 100, u64::MAX)));
    }

    #[test]
    fn auxv_lookup() {
        let words: [usize; 8] = [
            AT_PAGESZ as usize,
            16384,
            AT_CLKTCK as usize,
            100,
            0,
            0,
            6,
            1,
        ];
        let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_ne_bytes()).collect();
        assert_eq!(auxv_value(&bytes, AT_PAGESZ), Some(16384));
        assert_eq!(auxv_value(&bytes, AT_CLKTCK), Some(100));
        assert_eq!(auxv_value(&bytes, 99), None);
        assert_eq!(auxv_value(&bytes[..5], AT_PAGESZ), None);
    }

    #[test]
    fn samples_this_machine() {
        let mut sampler = Sampler::new("/");
        for _ in 0..2 {
            let (host, process) = sampler.sample().unwrap();
            assert!((0.0..=1.0).contains(&host.cpu_busy_ratio), "{host:?}");
            assert!(host.cpus > 0 && host.memory_total_bytes > 0, "{host:?}");
            assert!(
                host.memory_available_bytes <= host.memory_total_bytes,
                "{host:?}"
            );
            assert!(host.disk_total_bytes > 0, "{host:?}");
            assert!(
                host.disk_available_bytes <= host.disk_total_bytes,
                "{host:?}"
            );
            assert!(process.rss_bytes > 0 && process.threads > 0, "{process:?}");
            assert!(
                process.open_fds > 0 && process.cpu_seconds_total >= 0.0,
                "{process:?}"
            );
        }
    }

    #[test]
    fn missing_disk_path_is_a_read_error() {
        let error = Sampler::new("/does/not/exist").sample().unwrap_err();
        assert!(
            matches!(&error, SampleError::Read { path, .. } if path == "/does/not/exist"),
            "{error}"
        );
    }
}
