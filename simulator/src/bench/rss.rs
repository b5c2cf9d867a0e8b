//! Resident memory of a process from `/proc/<pid>/status`: `VmHWM` (the peak since it started)
//! and `VmRSS` (now); its CPU time from `/proc/<pid>/stat`, and the whole machine's from
//! `/proc/stat`. Linux only; elsewhere nothing is reported.

/// One process's resident memory, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub peak_kib: u64,
    pub current_kib: u64,
}

impl Memory {
    /// The memory of process `pid`, if it exists and reports it.
    pub fn of(pid: u32) -> Option<Memory> {
        parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }

    /// This process's memory.
    pub fn of_self() -> Option<Memory> {
        parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// User + system CPU seconds process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    parse_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds the whole machine has spent busy so far (every core; idle and I/O wait excluded).
pub fn machine_cpu_seconds() -> Option<f64> {
    parse_machine_cpu(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The busy ticks of `/proc/stat`'s `cpu` line: user, nice, system, irq, softirq and steal.
fn parse_machine_cpu(stat: &str) -> Option<f64> {
    const TICKS_PER_SEC: f64 = 100.0;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0))
        .sum::<u64>();
    Some(busy as f64 / TICKS_PER_SEC)
}

/// `utime` + `stime` (fields 14 and 15, in clock ticks of 1/100 s on Linux) from a `stat` line.
/// The command name (field 2) may hold spaces: fields are counted after its closing `)`.
fn parse_cpu(stat: &str) -> Option<f64> {
    const TICKS_PER_SEC: f64 = 100.0;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SEC)
}

/// Reads `VmHWM` and `VmRSS` from the text of a `status` file.
fn parse(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some(Memory {
        peak_kib: field("VmHWM:")?,
        current_kib: field("VmRSS:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peak_and_current_resident_memory() {
        let status = "Name:\tmirror-receiver\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse(status),
            Some(Memory {
                peak_kib: 51_234,
                current_kib: 40_960
            })
        );
        assert_eq!(parse("Name:\tx\nVmRSS:\t 1 kB\n"), None);
    }

    #[test]
    fn reads_cpu_time_after_the_command_name() {
        let stat = "4242 (tokio rt) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 3 0";
        assert_eq!(parse_cpu(stat), Some(3.8));
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn reads_the_machine_busy_time_without_idle_and_io_wait() {
        let stat = "cpu  100 20 30 5000 700 4 6 1 0 0\ncpu0 50 10 15 2500 350 2 3 0 0 0\n";
        assert_eq!(parse_machine_cpu(stat), Some(1.61));
        assert!(machine_cpu_seconds().is_some());
    }

    #[test]
    fn this_process_has_a_peak_at_least_its_current_size() {
        let memory = Memory::of_self().unwrap();
        assert!(memory.peak_kib >= memory.current_kib && memory.current_kib > 0);
    }
}
