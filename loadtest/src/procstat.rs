//! CPU time and resident memory of a process, from /proc (Linux).

use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU time.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss: u64,
}

/// Reads `/proc/PID/stat` (utime, stime in clock ticks; 100 Hz on Linux) and `/proc/PID/status`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(ProcSample { cpu: Duration::from_millis((utime + stime) * 10), rss: rss_kb * 1024 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_this_process() {
        let s = super::sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss > 0);
    }
}
