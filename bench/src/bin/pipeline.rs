//! End-to-end agent benchmark: tail -> parse -> queue (fsync) -> file output.
//!
//! ```text
//! pipeline --auditship target/release/auditship [--lines N] [--kind nginx|auth|mixed]
//!          [--fsync always|interval] [--dir DIR] [--rate R --seconds S]
//!          [--output file|collector] [--compression zstd|gzip|none] [--level L]
//!          [--agent-cpu N] [--collector-cpu N] [--segment-bytes 64MiB]
//!          [--agent-state DIR] [--collector-data DIR] [--trace]
//! ```
//!
//! `--trace` prints the delivered count and rate every 0.5 s (to see
//! whether the ingest or the delivery is behind, and when ingest ends).
//!
//! `--agent-state` and `--collector-data` put the agent's queue or the
//! collector's store somewhere else than under `--dir` (for example one of
//! them in tmpfs, to see what each process's disk writes cost the other).
//!
//! With `--output collector`, a real collector is started on this machine
//! (plain HTTP on 127.0.0.1) and the agent ships to it, compressing as
//! `--compression` says at `--level` (written into the agent's config as
//! `compression` and `compression_level`; default zstd level 1, the agent's
//! default; `--compression gzip` is how it shipped before zstd); progress
//! is the collector's stored event count, and the report has CPU and peak
//! RSS for both processes. `--agent-cpu`/`--collector-cpu` pin a process
//! to one core with `taskset`.
//!
//! With `--rate`, the files start empty and lines are appended at R lines per
//! second for S seconds while the agent runs (a typical host); the report is
//! then the agent's share of one core and its peak RSS.
//!
//! Generates N realistic lines into files, starts the real agent on them
//! with a file output, and waits until the output holds every line. It then
//! reports wall time, lines per second, the agent's CPU seconds per million
//! lines (user + system, from /proc) and its peak RSS (VmHWM), and stops the
//! agent with SIGTERM. The clock starts when the agent is started, so the
//! figures include startup and recovery. `sustained_lines_per_s` is the
//! rate between 10 % and 90 % of the lines delivered: without startup, and
//! without the last batch waiting out the output's `max_wait`.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditship_bench::{arg, Kind, LineGen};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = arg(&args, "--auditship").unwrap_or_else(|| "target/release/auditship".into());
    let lines: usize = arg(&args, "--lines")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let kind = arg(&args, "--kind").unwrap_or_else(|| "nginx".into());
    let fsync = arg(&args, "--fsync").unwrap_or_else(|| "always".into());
    let dir = arg(&args, "--dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("auditship-bench"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).expect("bench dir");

    let rate: Option<usize> = arg(&args, "--rate").and_then(|s| s.parse().ok());
    let seconds: u64 = arg(&args, "--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let lines = match rate {
        Some(r) => r * seconds as usize,
        None => lines,
    };
    let t = Instant::now();
    let bytes = if rate.is_some() {
        fs::write(dir.join("logs/access.log"), "").expect("log file");
        0
    } else {
        generate(&dir.join("logs"), &kind, lines)
    };
    eprintln!(
        "generated {lines} {kind} lines ({:.0} MB) in {:.1}s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let fsync_cfg = match fsync.as_str() {
        "interval" => "fsync = \"interval\"\nfsync_interval = \"500ms\"",
        _ => "fsync = \"always\"",
    };
    let cfg = dir.join("agent.toml");
    let out = dir.join("out.ndjson");
    let to_collector = arg(&args, "--output").as_deref() == Some("collector");
    let pin = |cpu: Option<String>, argv: Vec<String>| -> Command {
        match cpu {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", &c]).args(argv);
                cmd
            }
            None => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
        }
    };
    let collector = to_collector.then(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let ccfg = dir.join("collector.toml");
        fs::write(
            &ccfg,
            format!(
                "data_dir = \"{}\"\nlisten = \"127.0.0.1:{port}\"\ninsecure_plain_http = true\n[log]\nlevel = \"warn\"\n\
                 [[tokens]]\nname = \"a\"\nrole = \"ingest\"\nagents = [\"bench\"]\ntoken = \"bench-ingest-token-0\"\n\
                 [[tokens]]\nname = \"r\"\nrole = \"reader\"\ntoken = \"bench-reader-token-0\"\n",
                arg(&args, "--collector-data")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| dir.join("collector-data"))
                    .display()
            ),
        )
        .expect("collector config");
        let child = pin(
            arg(&args, "--collector-cpu"),
            vec![bin.clone(), "collector".into(), "--config".into(), ccfg.display().to_string()],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start auditship collector");
        while collector_events(port).is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        (child, port)
    });
    let compression = arg(&args, "--compression").unwrap_or_else(|| "zstd".into());
    assert!(
        ["zstd", "gzip", "none"].contains(&compression.as_str()),
        "--compression is zstd, gzip or none"
    );
    let level: i32 = arg(&args, "--level").map_or(1, |l| l.parse().expect("--level"));
    let compression_cfg = match compression.as_str() {
        "none" => "compression = \"none\"\n".to_string(),
        c => format!("compression = \"{c}\"\ncompression_level = {level}\n"),
    };
    let output_cfg = match &collector {
        Some((_, port)) => format!(
            "[[outputs]]\ntype = \"collector\"\nendpoints = [\"http://127.0.0.1:{port}\"]\ntoken = \"bench-ingest-token-0\"\n{compression_cfg}"
        ),
        None => format!("[[outputs]]\ntype = \"file\"\npath = \"{}\"\n", out.display()),
    };
    let segment = arg(&args, "--segment-bytes").unwrap_or_else(|| "64MiB".into());
    fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\nagent_id = \"bench\"\n[queue]\nmax_bytes = \"4GiB\"\nsegment_bytes = \"{segment}\"\n{fsync_cfg}\n\
             [[inputs]]\ntype = \"file\"\nname = \"bench\"\ninclude = [\"{}/*.log\"]\nformat = \"auto\"\ntimezone = \"UTC\"\n\
             {output_cfg}[log]\nlevel = \"warn\"\n",
            arg(&args, "--agent-state")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("state"))
                .display(),
            dir.join("logs").display(),
        ),
    )
    .expect("config");

    let start = Instant::now();
    let mut child = pin(
        arg(&args, "--agent-cpu"),
        vec![
            bin.clone(),
            "agent".into(),
            "--config".into(),
            cfg.display().to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start auditship agent");
    let pid = child.id();
    let writer = rate.map(|r| {
        let path = dir.join("logs/access.log");
        std::thread::spawn(move || steady(&path, r, seconds))
    });
    // Progress comes from the file output's acknowledgement slots (the id
    // of the last durably written event; ids start at 1 and nothing is
    // dropped here), so the harness does not compete with the agent for CPU
    // by re-reading the output. Lines are counted once, after the clock stops.
    let ack = PathBuf::from(format!("{}.ack", out.display()));
    let (mut cpu, mut rss) = (0.0, 0u64);
    let (mut ccpu, mut crss) = (0.0, 0u64);
    let cpid = collector.as_ref().map(|(c, _)| c.id());
    let progress = || match &collector {
        Some((_, port)) => collector_events(*port).unwrap_or(0),
        None => delivered(&ack),
    };
    // The sustained rate: from 10 % to 90 % of the lines delivered, so
    // neither startup nor the last batch's linger (max_wait) counts.
    let (mut t10, mut t90) = (None, None);
    let trace = args.iter().any(|a| a == "--trace");
    let mut next_trace = Duration::from_millis(500);
    let mut last_done = 0;
    loop {
        let done = progress();
        if trace && start.elapsed() >= next_trace {
            eprintln!(
                "trace t={:.1}s delivered={done} rate={}",
                start.elapsed().as_secs_f64(),
                (done - last_done) * 2
            );
            last_done = done;
            next_trace += Duration::from_millis(500);
        }
        if t10.is_none() && done * 10 >= lines as u64 {
            t10 = Some(start.elapsed());
        }
        if t90.is_none() && done * 10 >= lines as u64 * 9 {
            t90 = Some(start.elapsed());
        }
        if done >= lines as u64 {
            break;
        }
        if let Some((c, r)) = proc_stats(pid) {
            (cpu, rss) = (c, r);
        }
        if let Some((c, r)) = cpid.and_then(proc_stats) {
            (ccpu, crss) = (c, r);
        }
        if start.elapsed() > Duration::from_secs(600) {
            eprintln!("timed out with {} of {lines} lines delivered", progress());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed().as_secs_f64();
    if let Some((c, r)) = proc_stats(pid) {
        (cpu, rss) = (c, r);
    }
    if let Some((c, r)) = cpid.and_then(proc_stats) {
        (ccpu, crss) = (c, r);
    }
    let counted = match &collector {
        Some((_, port)) => collector_events(*port).unwrap_or(0) as usize,
        None => count_lines(&out),
    };
    let collector_report = format!(
        " compression={compression}{} collector_cpu_s_per_1m={:.2} collector_peak_rss_mb={:.1}",
        if compression == "none" {
            String::new()
        } else {
            format!(":{level}")
        },
        ccpu / (counted as f64 / 1e6),
        crss as f64 / 1024.0
    );
    let collector_report = if collector.is_some() {
        collector_report
    } else {
        String::new()
    };
    let stop_collector = |collector: Option<(std::process::Child, u16)>| {
        if let Some((mut c, _)) = collector {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = child.wait();
        println!(
            "steady rate={} lines/s for {seconds}s: lines={counted} cpu_pct_of_one_core={:.2} peak_rss_mb={:.1}{}",
            rate.unwrap_or(0),
            cpu / wall * 100.0,
            rss as f64 / 1024.0,
            if collector.is_some() {
                format!(" collector_cpu_pct={:.2} collector_peak_rss_mb={:.1}", ccpu / wall * 100.0, crss as f64 / 1024.0)
            } else {
                String::new()
            }
        );
        stop_collector(collector);
        return;
    }
    let sustained = match (t10, t90) {
        (Some(a), Some(b)) if b > a => 0.8 * lines as f64 / (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    println!(
        "kind={kind} fsync={fsync} output={} lines={counted} wall={wall:.2}s lines_per_s={:.0} sustained_lines_per_s={sustained:.0} cpu_s_per_1m={:.2} peak_rss_mb={:.1} input_mb={:.0}{collector_report}",
        if collector.is_some() { "collector" } else { "file" },
        counted as f64 / wall,
        cpu / (counted as f64 / 1e6),
        rss as f64 / 1024.0,
        bytes as f64 / 1e6
    );
    stop_collector(collector);
}

/// Events the collector holds, from `GET /v1/stats` (None while it is not up).
fn collector_events(port: u16) -> Option<u64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET /v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bench-reader-token-0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    let at = body.find("\"events\":")? + 9;
    body[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The id of the last event the file output acknowledged (see
/// `agent/src/output/file.rs` for the slot layout).
fn delivered(ack: &Path) -> u64 {
    let Ok(b) = fs::read(ack) else { return 0 };
    b.chunks_exact(40)
        .filter(|s| &s[..4] == b"ASAK")
        .map(|s| {
            let seq = u64::from_le_bytes(s[4..12].try_into().expect("8 bytes"));
            let id = u64::from_le_bytes(s[12..20].try_into().expect("8 bytes"));
            (seq, id)
        })
        .max()
        .map_or(0, |(_, id)| id)
}

fn count_lines(path: &Path) -> usize {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(_) => return 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while let Ok(k) = f.read(&mut buf) {
        if k == 0 {
            break;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count();
    }
    n
}

/// Appends `rate` nginx lines per second to `path` for `seconds`, in 10 ms ticks.
fn steady(path: &Path, rate: usize, seconds: u64) {
    let mut gen = LineGen::new(7);
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("log file");
    let start = Instant::now();
    let mut written = 0usize;
    let mut line = String::new();
    let total = rate * seconds as usize;
    while written < total {
        let due = if start.elapsed() < Duration::from_secs(seconds) {
            (start.elapsed().as_secs_f64() * rate as f64) as usize
        } else {
            total
        };
        let mut chunk = String::new();
        while written < due.min(total) {
            line.clear();
            gen.line(Kind::NginxCombined, &mut line);
            chunk.push_str(&line);
            chunk.push('\n');
            written += 1;
        }
        f.write_all(chunk.as_bytes()).expect("append");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes the lines; `mixed` spreads nginx and auth lines over 8 files.
fn generate(dir: &Path, kind: &str, lines: usize) -> u64 {
    let mut gen = LineGen::new(42);
    let files: Vec<(Kind, &str)> = match kind {
        "auth" => vec![(Kind::Auth, "auth.log")],
        "mixed" => (0..8)
            .map(|i| {
                if i % 2 == 0 {
                    (Kind::NginxCombined, "x")
                } else {
                    (Kind::Auth, "x")
                }
            })
            .collect(),
        _ => vec![(Kind::NginxCombined, "access.log")],
    };
    let mut writers: Vec<(Kind, BufWriter<File>)> = files
        .iter()
        .enumerate()
        .map(|(i, (k, name))| {
            let name = if *name == "x" {
                format!("f{i}.log")
            } else {
                name.to_string()
            };
            (
                *k,
                BufWriter::with_capacity(1 << 20, File::create(dir.join(name)).expect("log file")),
            )
        })
        .collect();
    let mut line = String::with_capacity(512);
    let mut bytes = 0u64;
    for i in 0..lines {
        let n = writers.len();
        let (k, w) = &mut writers[i % n];
        line.clear();
        gen.line(*k, &mut line);
        line.push('\n');
        bytes += line.len() as u64;
        w.write_all(line.as_bytes()).expect("write");
    }
    for (_, w) in &mut writers {
        w.flush().expect("flush");
    }
    bytes
}

/// (CPU seconds, peak RSS in KiB) of a process, from /proc.
fn proc_stats(pid: u32) -> Option<(f64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm))
}
