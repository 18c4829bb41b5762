//! What a figure needs beside it to mean anything: the machine it was measured on and the code
//! it measured.

use serde_json::{json, Value};

/// The CPU model, usable cores, operating system and architecture.
pub(super) fn machine() -> Value {
    json!({
        "cpu_model": cpu_model().unwrap_or_else(|| "unknown".into()),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

fn cpu_model() -> Option<String> {
    if cfg!(target_os = "linux") {
        let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        return model_name(&info);
    }
    if cfg!(target_os = "macos") {
        let out = std::process::Command::new("sysctl")
            .args(["-n", "machdep.cpu.brand_string"])
            .output()
            .ok()?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        return (out.status.success() && !name.is_empty()).then_some(name);
    }
    None
}

/// The first `model name` of a `/proc/cpuinfo`.
fn model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The machine's CPU time so far, from `/proc/stat` (Linux): busy (user, nice, system, irq,
/// softirq) and stolen by the hypervisor, in milliseconds over all cores. `None` elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTimes {
    pub busy_ms: f64,
    pub steal_ms: f64,
}

pub(crate) fn cpu_times() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_cpu_line(
        stat.lines().next()?,
        if ticks > 0 { ticks as f64 } else { 100.0 },
    )
}

/// The aggregate `cpu` line of `/proc/stat`, with `ticks` clock ticks per second.
fn parse_cpu_line(line: &str, ticks: f64) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<f64> = fields.map_while(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    if v.len() < 8 {
        return None;
    }
    let ms = |t: f64| t * 1000.0 / ticks;
    Some(CpuTimes {
        busy_ms: ms(v[0] + v[1] + v[2] + v[5] + v[6]),
        steal_ms: ms(v[7]),
    })
}

/// What the machine's CPUs spent between `before` and now, per message: the whole pipeline's
/// cost (server, database and the load generator itself), which noisy neighbours disturb far
/// less than throughput. `null` where `/proc/stat` is not available.
pub(crate) fn cpu_per_message(before: Option<CpuTimes>, messages: usize) -> serde_json::Value {
    match (before, cpu_times()) {
        (Some(b), Some(a)) if messages > 0 => json!({
            "cpu_ms_per_message": (a.busy_ms - b.busy_ms) / messages as f64,
            "steal_ms": a.steal_ms - b.steal_ms,
        }),
        _ => serde_json::Value::Null,
    }
}

/// The commit checked out in the current directory (`git rev-parse --short HEAD`), with
/// `-dirty` when the work tree has changes; `unknown` without git or outside a repository.
pub(super) async fn commit() -> String {
    let git = |args: &'static [&'static str]| async move {
        let out = tokio::process::Command::new("git")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .await
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"])
        .await
        .filter(|h| !h.is_empty())
    else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain"]).await {
        Some(changes) if !changes.is_empty() => format!("{head}-dirty"),
        _ => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_from_the_aggregate_line_of_proc_stat() {
        let t = parse_cpu_line("cpu  400 10 40 9000 20 5 5 30 0 0", 100.0).unwrap();
        assert_eq!(t.busy_ms, 4600.0);
        assert_eq!(t.steal_ms, 300.0);
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8", 100.0), None);
        assert_eq!(parse_cpu_line("cpu 1 2 3", 100.0), None);
    }

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(model_name(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(model_name("processor : 0\nCPU part : 0xd0c\n"), None);
    }
}
