//! CPU and memory of this process from `/proc/self`, for TaskStats' `agg_resource_usage`.
//!
//! Every task runs inside the plugin process, so each task reports the process's usage (Nomad
//! shows it per task; summed over an allocation's tasks it counts the process more than once).
//! Best effort: where `/proc` is unreadable the fields are zero and not listed as measured.
//! Clock ticks are taken as 100 per second (Linux's USER_HZ on every common architecture).

use super::proto::drivers::{
    cpu_usage::Fields as CpuFields, memory_usage::Fields as MemFields, CpuUsage, MemoryUsage,
    TaskResourceUsage,
};
use std::time::Instant;

const TICKS_PER_SEC: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

/// The previous CPU sample, for the percentage between two messages.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    ticks: f64,
    at: Instant,
}

/// (user, system) ticks from `/proc/self/stat`.
fn cpu_ticks() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let user = fields.get(11)?.parse::<f64>().ok()?;
    let system = fields.get(12)?.parse::<f64>().ok()?;
    Some((user, system))
}

/// Resident bytes from `/proc/self/statm`.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages = statm.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    Some(pages * PAGE_SIZE)
}

/// The usage now, and the sample for the next percentage.
pub fn sample(previous: Option<CpuSample>) -> (TaskResourceUsage, Option<CpuSample>) {
    let now = Instant::now();
    let cpu = match cpu_ticks() {
        Some((user, system)) => {
            let ticks = user + system;
            let percent = previous
                .map(|p| {
                    let secs = now.duration_since(p.at).as_secs_f64();
                    if secs > 0.0 {
                        (ticks - p.ticks) / TICKS_PER_SEC / secs * 100.0
                    } else {
                        0.0
                    }
                })
                .unwrap_or(0.0);
            let mut measured = vec![CpuFields::UserMode, CpuFields::SystemMode];
            if previous.is_some() {
                measured.push(CpuFields::Percent);
            }
            (
                CpuUsage {
                    system_mode: system / TICKS_PER_SEC,
                    user_mode: user / TICKS_PER_SEC,
                    percent,
                    measured_fields: measured.into_iter().map(Into::into).collect(),
                    ..CpuUsage::default()
                },
                Some(CpuSample { ticks, at: now }),
            )
        }
        None => (CpuUsage::default(), None),
    };
    let memory = match rss_bytes() {
        Some(rss) => MemoryUsage {
            rss,
            usage: rss,
            measured_fields: vec![MemFields::Rss.into(), MemFields::Usage.into()],
            ..MemoryUsage::default()
        },
        None => MemoryUsage::default(),
    };
    (
        TaskResourceUsage {
            cpu: Some(cpu.0),
            memory: Some(memory),
        },
        cpu.1,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let (usage, next) = super::sample(None);
        assert!(usage.memory.expect("memory").rss > 0);
        assert!(next.is_some());
        let (usage, _) = super::sample(next);
        assert!(usage.cpu.expect("cpu").percent >= 0.0);
    }
}
