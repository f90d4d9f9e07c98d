//! What `/system-monitoring-information` and `/thread-dump` report of this process and its host,
//! read from Linux's `/proc`. Best effort: whatever cannot be read is reported as zero (or left
//! out of the thread dump), never as an error.

use std::time::Instant;

/// Clock ticks per second of `/proc/*/stat` times (Linux's USER_HZ on every common
/// architecture).
const TICKS_PER_SEC: f64 = 100.0;

/// The fields of one `/proc/.../stat` line after the command name (which is in parentheses
/// and may hold spaces): index 0 is the state, 11 utime, 12 stime, 19 starttime.
fn stat_fields(text: &str) -> Option<(String, Vec<String>)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let rest = text.get(close + 1..)?;
    Some((name, rest.split_whitespace().map(str::to_owned).collect()))
}

/// CPU seconds this process has used (user and system).
pub fn process_cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, fields) = stat_fields(&text)?;
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SEC)
}

/// Seconds since this process started.
pub fn process_uptime_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, fields) = stat_fields(&text)?;
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let host_secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some((host_secs - start_ticks / TICKS_PER_SEC).max(0.0))
}

/// (busy, total) jiffies of the whole host, from the `cpu` line of `/proc/stat`.
pub fn host_cpu_jiffies() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = values.iter().sum();
    // idle and iowait are the 4th and 5th values.
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    Some((total - idle, total))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// One `key: value kB` line of a `/proc` status-like file, in bytes (or as a plain number when
/// it has no unit).
fn kv_number(text: &str, key: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))?;
    let mut words = line.split(':').nth(1)?.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    Some(match words.next() {
        Some("kB") => n * 1024,
        _ => n,
    })
}

/// Memory and threads of this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident bytes (`VmRSS`).
    pub rss: u64,
    /// Resident anonymous bytes (`RssAnon`: the heap and stacks).
    pub rss_anon: u64,
    /// Peak resident bytes (`VmHWM`).
    pub rss_peak: u64,
    /// Virtual bytes (`VmSize`).
    pub virtual_size: u64,
    /// Threads now.
    pub threads: u64,
}

/// Reads `/proc/self/status`.
pub fn process_memory() -> ProcessMemory {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return ProcessMemory::default();
    };
    ProcessMemory {
        rss: kv_number(&text, "VmRSS").unwrap_or(0),
        rss_anon: kv_number(&text, "RssAnon").unwrap_or(0),
        rss_peak: kv_number(&text, "VmHWM").unwrap_or(0),
        virtual_size: kv_number(&text, "VmSize").unwrap_or(0),
        threads: kv_number(&text, "Threads").unwrap_or(0),
    }
}

/// The host's memory, bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostMemory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable` (what can be had without swapping), else `MemFree`.
    pub free: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

/// Reads `/proc/meminfo`.
pub fn host_memory() -> HostMemory {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return HostMemory::default();
    };
    HostMemory {
        total: kv_number(&text, "MemTotal").unwrap_or(0),
        free: kv_number(&text, "MemAvailable")
            .or_else(|| kv_number(&text, "MemFree"))
            .unwrap_or(0),
        swap_total: kv_number(&text, "SwapTotal").unwrap_or(0),
        swap_free: kv_number(&text, "SwapFree").unwrap_or(0),
    }
}

/// Open file descriptors of this process (its sockets among them).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// One thread of this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The kernel's thread ID.
    pub id: u64,
    /// Its name (`comm`).
    pub name: String,
    /// Its state, as Java names thread states (`RUNNABLE`, `WAITING`, ...).
    pub state: &'static str,
}

/// Java's thread state for a Linux task state letter.
fn java_state(letter: &str) -> &'static str {
    match letter {
        "R" => "RUNNABLE",
        "S" | "I" => "WAITING",
        "D" => "BLOCKED",
        "T" | "t" => "TIMED_WAITING",
        "Z" | "X" | "x" => "TERMINATED",
        _ => "NEW",
    }
}

/// Every thread of this process, by ID.
pub fn threads() -> Vec<ThreadInfo> {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut threads: Vec<ThreadInfo> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let id: u64 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, fields) = stat_fields(&stat)?;
            Some(ThreadInfo {
                id,
                name,
                state: java_state(fields.first().map(String::as_str).unwrap_or("")),
            })
        })
        .collect();
    threads.sort_by_key(|t| t.id);
    threads
}

/// A CPU reading, to compute the load between two requests.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    process_secs: f64,
    host: (f64, f64),
}

impl CpuSample {
    /// Now.
    pub fn take() -> Option<Self> {
        Some(Self {
            at: Instant::now(),
            process_secs: process_cpu_secs()?,
            host: host_cpu_jiffies().unwrap_or((0.0, 0.0)),
        })
    }
}

/// (process, host) CPU load in percent since `previous`; without one (the first request), the
/// process's average since it started and the host's since it booted. The process's load is a
/// share of the whole host (all processors), as Java's `getProcessCpuLoad`.
pub fn cpu_load(previous: Option<CpuSample>, now: CpuSample, processors: u64) -> (f64, f64) {
    let processors = processors.max(1) as f64;
    let (process, host) = match previous {
        Some(p) if now.at.duration_since(p.at).as_secs_f64() >= 0.05 => {
            let secs = now.at.duration_since(p.at).as_secs_f64();
            let process = (now.process_secs - p.process_secs) / secs / processors;
            let (busy, total) = (now.host.0 - p.host.0, now.host.1 - p.host.1);
            (process, if total > 0.0 { busy / total } else { 0.0 })
        }
        _ => {
            let up = process_uptime_secs().unwrap_or(0.0);
            let process = if up > 0.0 {
                now.process_secs / up / processors
            } else {
                0.0
            };
            let (busy, total) = now.host;
            (process, if total > 0.0 { busy / total } else { 0.0 })
        }
    };
    (
        (process * 100.0).clamp(0.0, 100.0),
        (host * 100.0).clamp(0.0, 100.0),
    )
}

/// Bytes as SeaTunnel prints them: `16.0G`, `135.7M`, `512.0K`; below 1 KiB the plain number.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.1}{unit}", bytes as f64 / size as f64);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_seatunnel_writes_them() {
        assert_eq!(human_bytes(0), "0");
        assert_eq!(human_bytes(1023), "1023");
        assert_eq!(human_bytes(1024), "1.0K");
        assert_eq!(human_bytes(142_300_000), "135.7M");
        assert_eq!(human_bytes(16 * (1 << 30)), "16.0G");
        assert_eq!(human_bytes(3 * (1 << 40)), "3.0T");
    }

    #[test]
    fn this_process_is_readable() {
        let memory = process_memory();
        assert!(memory.rss > 0 && memory.threads > 0, "{memory:?}");
        assert!(host_memory().total > 0);
        assert!(process_uptime_secs().is_some());
        let threads = threads();
        assert!(!threads.is_empty());
        assert!(threads.iter().all(|t| !t.name.is_empty()));
        let first = CpuSample::take().expect("a sample");
        let (process, host) = cpu_load(None, first, 1);
        assert!((0.0..=100.0).contains(&process) && (0.0..=100.0).contains(&host));
    }

    #[test]
    fn names_with_parentheses_and_spaces_are_read() {
        let (name, fields) = stat_fields("42 (tokio (x) 1) S 1 2 3").expect("parsed");
        assert_eq!(name, "tokio (x) 1");
        assert_eq!(fields[0], "S");
        assert_eq!(java_state("S"), "WAITING");
    }
}
